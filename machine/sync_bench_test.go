package machine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/benchcmp"
	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/olm"
)

// BenchmarkReceiveSyncChanges measures normal Olm to-device messages
// decrypted through ReceiveSyncChanges over an on-disk store, one event per
// call and in batches of 100, with the cache ("cache") and without
// ("no-cache"), beside the bare Session.Decrypt of messages of the same kind
// ("bare") and one raw SQLite commit of the rows the step writes
// ("raw-commit": the lease row's stamp, a message hash per event and the
// session blob once; "raw-commit-no-lease": the same without the lease
// row). The sides run interleaved in one run; times are per event. Every
// store starts with benchHistory message hashes, as a device in use has: the
// hash table's size decides how many pages a batch of hashes dirties.
//
// x-bare is the cached step as a multiple of the bare decryption (target:
// 3 in a batch of 100), x-bare-commit as a multiple of bare + raw-commit
// (target: 1.3 for one event), no-cache-x-cache the cache's effect (target:
// 1.5). The lease row is one of the rows every step commits: its stamp is
// how another process learns that its cache is stale (DESIGN.md invariant
// 1), so it belongs to the floor; x-bare-commit-no-lease shows the ratio
// to a floor without it.
func BenchmarkReceiveSyncChanges(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchReceive(b, batch) })
	}
}

// benchHistory is how many message hashes each store of the benchmark
// starts with.
const benchHistory = 10_000

func benchReceive(b *testing.B, batch int) {
	cached, plain := newOlmStream(b, false), newOlmStream(b, true)
	floor := cached.fork()
	raw := newRawOlmDB(b, len(floor.bare.Pickle(testStoreKey, []byte("olm_sessions"))))
	for _, s := range []*olmStream{cached, plain} {
		s.bob.update(b, func(tx *cryptostore.Tx) error {
			for i := range benchHistory {
				if err := tx.AddOlmMessage(benchHash(-1-i), "history"); err != nil {
					return err
				}
			}
			return nil
		})
	}
	receive := func(name string, s *olmStream) benchSide {
		var in benchcmp.Ahead[[]json.RawMessage]
		return benchSide{Name: name,
			Prepare: func(b *testing.B, ops int) {
				in.Fill(ops, func() []json.RawMessage { _, raws := s.next(b, batch); return raws })
			},
			Op: func(b *testing.B) time.Duration {
				raws := in.Take(b)
				return benchTimed(func() {
					res, err := s.bob.ReceiveSyncChanges(context.Background(), SyncChanges{ToDeviceEvents: raws})
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range res {
						if r.Err != nil {
							b.Fatal(r.Err)
						}
					}
				})
			}}
	}
	hashed := 0 // hashes made for the raw sides, numbered apart from the history's
	rawCommit := func(name string, lease bool) benchSide {
		var in benchcmp.Ahead[[][32]byte]
		return benchSide{Name: name,
			Prepare: func(b *testing.B, ops int) {
				in.Fill(ops, func() [][32]byte {
					hashes := make([][32]byte, batch)
					for i := range hashes {
						hashed++
						hashes[i] = benchHash(hashed)
					}
					return hashes
				})
			},
			Op: func(b *testing.B) time.Duration {
				hashes := in.Take(b)
				return benchTimed(func() { raw.commit(b, hashes, lease) })
			}}
	}
	var bare benchcmp.Ahead[[][]byte]
	per := benchInterleave(b,
		benchSide{Name: "bare",
			Prepare: func(b *testing.B, ops int) {
				bare.Fill(ops, func() [][]byte { bodies, _ := floor.next(b, batch); return bodies })
			},
			Op: func(b *testing.B) time.Duration {
				bodies := bare.Take(b)
				return benchTimed(func() {
					for _, body := range bodies {
						if _, err := floor.bare.Decrypt(olm.MessageTypeNormal, body); err != nil {
							b.Fatal(err)
						}
					}
				})
			}},
		rawCommit("raw-commit", true),
		rawCommit("raw-commit-no-lease", false),
		receive("cache", cached),
		receive("no-cache", plain),
	)
	reportStepRatios(b, per, float64(batch))
}

// reportStepRatios reports a step benchmark's metrics per event from the
// per-call times of its sides, in the order bare, raw-commit,
// raw-commit-no-lease, cache, no-cache.
func reportStepRatios(b *testing.B, per []float64, events float64) {
	bare, commit, commitNoLease, cache, noCache := per[0]/events, per[1]/events, per[2]/events, per[3]/events, per[4]/events
	b.ReportMetric(cache, "ns/event")
	b.ReportMetric(cache/bare, "x-bare")
	b.ReportMetric(cache/(bare+commit), "x-bare-commit")
	b.ReportMetric(cache/(bare+commitNoLease), "x-bare-commit-no-lease")
	b.ReportMetric(noCache/bare, "no-cache-x-bare")
	b.ReportMetric(noCache/(bare+commit), "no-cache-x-bare-commit")
	b.ReportMetric(noCache/cache, "no-cache-x-cache")
}

// olmStream is Alice sending normal Olm messages to Bob's machine: Alice's
// session in memory, and a bare copy of Bob's for the protocol-only floor.
type olmStream struct {
	alice      *tdPeer
	bob        *tdPeer
	send, bare *olm.Session
}

// newOlmStream connects Alice to a Bob whose store has the cache on or off,
// and exchanges a message each way so that Alice's messages are normal ones.
func newOlmStream(b *testing.B, noCache bool) *olmStream {
	clock := newStepClock()
	alice := newTDPeer(b, "@alice:example.org", "ALICE", clock)
	s, err := cryptostore.Open(context.Background(), filepath.Join(b.TempDir(), "crypto.db"),
		cryptostore.Options{Key: testStoreKey, Role: "app", Now: clock.Now, NoCache: noCache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m, err := Open(context.Background(), s, "@bob:example.org", "BOB", Options{Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	bob := &tdPeer{Machine: m, clock: clock}
	bob.keysJSON = bob.signedDeviceKeys(b)
	introducePeers(b, alice, bob)
	olmConnect(b, alice, bob)
	wantDecrypted(b, bob.receive(b, olmSend(b, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
	wantDecrypted(b, alice.receive(b, olmSend(b, bob, alice, "m.test", `{}`))[0], bob, "m.test", `{}`)
	st := &olmStream{alice: alice, bob: bob}
	st.send = sessionWith(b, alice, bob)
	st.bare = sessionWith(b, bob, alice)
	return st
}

// fork returns a stream of its own from copies of both sessions: the bare
// floor decrypts messages exactly like the machine's.
func (s *olmStream) fork() *olmStream {
	return &olmStream{alice: s.alice, bob: s.bob, send: s.send.Clone(), bare: s.bare.Clone()}
}

// next encrypts n messages from Alice and returns their bodies and the
// to-device events carrying them.
func (s *olmStream) next(b *testing.B, n int) ([][]byte, []json.RawMessage) {
	payload := []byte(olmPayload(s.alice, s.bob, nil))
	bodies := make([][]byte, n)
	raws := make([]json.RawMessage, n)
	for i := range n {
		typ, body, err := s.send.Encrypt(rand.Reader, payload)
		if err != nil || typ != olm.MessageTypeNormal {
			b.Fatal(typ, err)
		}
		bodies[i] = body
		content, _ := json.Marshal(olmContent{Algorithm: OlmAlgorithm, SenderKey: s.alice.ids.Curve25519.String(),
			Ciphertext: map[string]olmCiphertext{s.bob.ids.Curve25519.String(): {Type: 1, Body: b64.Encode(body)}}})
		raws[i] = toDeviceEvent(s.alice.userID, EventRoomEncrypted, content)
	}
	return bodies, raws
}

// rawOlmDB is a SQLite file opened as the store opens its own, with tables
// shaped like the store's Olm sessions and message hashes: the floor a
// committed step is measured against. Its rows hold values of the sizes the
// store's hold: the sender's key and the session's ID as the store writes
// them, times in Unix milliseconds.
type rawOlmDB struct {
	db                   *sqlitedb.DB
	blob                 []byte
	senderKey, sessionID string
	n                    int // hashes written
}

// rawMillis is the time in Unix milliseconds of the raw database's n-th row.
func rawMillis(n int) int64 {
	return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli() + int64(n)
}

func newRawOlmDB(b *testing.B, blobSize int) *rawOlmDB {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(b.TempDir(), "raw.db"), sqlitedb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	r := &rawOlmDB{db: db, blob: make([]byte, blobSize), senderKey: benchKeyString(), sessionID: benchKeyString()}
	rand.Read(r.blob)
	err = db.Write(ctx, "setup", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		for _, q := range []string{
			`CREATE TABLE sessions (session_id TEXT PRIMARY KEY, sender_key TEXT NOT NULL,
				created_at INTEGER NOT NULL, last_used_at INTEGER NOT NULL, blob BLOB NOT NULL)`,
			`CREATE INDEX sessions_by_sender ON sessions (sender_key, last_used_at)`,
			`CREATE TABLE hashes (hash BLOB PRIMARY KEY, sender_key TEXT NOT NULL,
				received_at INTEGER NOT NULL) WITHOUT ROWID`,
			`CREATE TABLE lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, stamp INTEGER NOT NULL)`,
			`INSERT INTO lease VALUES ('lease', 'holder', 0)`,
		} {
			if _, err := tx.Exec(q); err != nil {
				return err
			}
		}
		for i := range benchHistory {
			h := benchHash(-1 - i)
			if _, err := tx.Exec(`INSERT INTO hashes (hash, sender_key, received_at) VALUES (?, ?, ?)`,
				h[:], "history", rawMillis(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// benchHash is a message hash: random-looking, as SHA-256 output is.
func benchHash(i int) [32]byte {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	return sha256.Sum256(n[:])
}

// commit writes the rows of decrypted messages in one transaction: with
// lease, the lease row's stamp that tells other processes the state moved
// on (as every step of the store writes it); their hashes; and the session
// blob once.
func (r *rawOlmDB) commit(b *testing.B, hashes [][32]byte, lease bool) {
	err := r.db.Write(context.Background(), "raw commit", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		if err := stampRawLease(tx, lease); err != nil {
			return err
		}
		for _, h := range hashes {
			r.n++
			if _, err := tx.Exec(`INSERT INTO hashes (hash, sender_key, received_at) VALUES (?, ?, ?)`,
				h[:], r.senderKey, rawMillis(r.n)); err != nil {
				return err
			}
		}
		binary.BigEndian.PutUint64(r.blob, uint64(r.n)) // new bytes, as a sealed blob is
		_, err := tx.Exec(`INSERT INTO sessions (session_id, sender_key, created_at, last_used_at, blob)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO UPDATE SET last_used_at = excluded.last_used_at, blob = excluded.blob`,
			r.sessionID, r.senderKey, rawMillis(0), rawMillis(r.n), r.blob)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// stampRawLease bumps the raw database's lease row, as every step of the
// store bumps its lease row's data stamp (when lease is set).
func stampRawLease(tx *sqlitedb.Tx, lease bool) error {
	if !lease {
		return nil
	}
	_, err := tx.Exec(`UPDATE lease SET stamp = stamp + 1 WHERE name = ? AND holder = ?`, "lease", "holder")
	return err
}

// benchBlock is how many measured operations of one side run before the
// next side's turn; each block starts with one more, not measured, and its
// inputs are made before it (benchcmp.Interleave).
const benchBlock = 8

type benchSide = benchcmp.Side

var benchTimed = benchcmp.Timed

func benchInterleave(b *testing.B, sides ...benchSide) []float64 {
	return benchcmp.Interleave(b, benchBlock, sides...)
}
