package machine

import (
	"context"
	"crypto/rand"
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

// BenchmarkReceivePreKey measures pre-key Olm to-device messages decrypted
// through ReceiveSyncChanges over an on-disk store: each message is the
// first of a new inbound session, made from one of the one-time keys Bob
// published, and comes from a new device of Alice's (so that no sender
// reaches MaxOlmSessionsPerSender and the step never archives a session).
// Bob's step decrypts it with a new session from the key (decryptPreKey →
// Account.NewInboundSession), deletes the key's row, inserts the session's
// row and records the message's hash, all in one transaction per call.
// Calls carry one event or 10: each event uses up a one-time key, and 10 is
// a fifth of the TargetOneTimeKeys (50) that Bob keeps published.
//
// Sides, run interleaved, times per event:
//   - "cache" and "no-cache": ReceiveSyncChanges with the store's cache and
//     without it (cryptostore Options.NoCache);
//   - "bare": ParsePreKeyMessage and Account.NewInboundSession (which
//     decrypts) on a bare olm.Account holding as many one-time keys;
//   - "raw-commit": one raw SQLite transaction over tables shaped like the
//     store's writing the same rows: the lease row's stamp, then per event
//     the DELETE of the one-time key's row and the INSERTs of a session row
//     (random bytes the size of a sealed new session) and of the message
//     hash; "raw-commit-no-lease": the same without the lease row.
//
// Before each block of calls (benchcmp.Interleave), outside the measured
// part, Bob's machine tops its keys up to TargetOneTimeKeys through its
// keys-upload flow against the test server, as a client does after a sync
// that reports keys claimed, new devices claim the keys the block's calls
// use and encrypt, and Bob's store learns the devices, as a key query would
// tell it; the bare account and the raw tables are topped up alike. Within
// a block the calls then run back to back, as syncs bringing pre-key
// messages from new devices do. Every store starts with benchHistory
// message hashes. Every measured event must decrypt.
//
// x-bare is the cached step as a multiple of the bare operation,
// x-bare-commit as a multiple of bare + raw-commit (target: 1.3 for one
// event), no-cache-x-cache the step without the cache as a multiple of the
// cached one (target: 1.5); there is no target for a batch of pre-key
// messages. x-bare-commit-no-lease shows the ratio to a floor without the
// lease row.
func BenchmarkReceivePreKey(b *testing.B) {
	for _, batch := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchReceivePreKey(b, batch) })
	}
}

func benchReceivePreKey(b *testing.B, batch int) {
	cached, plain := newPreKeyStream(b, false), newPreKeyStream(b, true)
	bare := newBarePreKeyReceiver(b)
	raw := newRawPreKeyDB(b, bare.sessionSize, bare.keySize)
	receive := func(name string, s *preKeyStream) benchSide {
		var in benchcmp.Ahead[[]json.RawMessage]
		return benchSide{Name: name,
			Prepare: func(b *testing.B, ops int) {
				for _, events := range s.next(b, ops, batch) {
					in.Put(events)
				}
			},
			Op: func(b *testing.B) time.Duration {
				events := in.Take(b)
				return benchTimed(func() {
					res, err := s.bob.ReceiveSyncChanges(context.Background(), SyncChanges{ToDeviceEvents: events})
					if err != nil {
						b.Fatal(err)
					}
					if len(res) != len(events) {
						b.Fatalf("%d results for %d events", len(res), len(events))
					}
					for _, r := range res {
						if r.Err != nil || !r.Encrypted {
							b.Fatalf("pre-key message not decrypted: %v", r.Err)
						}
					}
				})
			}}
	}
	rawCommit := func(name string, lease bool) benchSide {
		var in benchcmp.Ahead[[]rawPreKeyRow]
		return benchSide{Name: name,
			Prepare: func(b *testing.B, ops int) {
				benchcmp.PutBatches(&in, raw.next(b, ops*batch), batch)
			},
			Op: func(b *testing.B) time.Duration {
				rows := in.Take(b)
				return benchTimed(func() { raw.commit(b, rows, lease) })
			}}
	}
	var bareIn benchcmp.Ahead[[]barePreKey]
	// A block's calls use keys Bob published before it: no more than he
	// keeps published.
	block := min(benchBlock, TargetOneTimeKeys/batch-1)
	per := benchcmp.Interleave(b, block,
		benchSide{Name: "bare",
			Prepare: func(b *testing.B, ops int) {
				benchcmp.PutBatches(&bareIn, bare.next(b, ops*batch), batch)
			},
			Op: func(b *testing.B) time.Duration {
				msgs := bareIn.Take(b)
				return benchTimed(func() {
					for _, m := range msgs {
						pre, err := olm.ParsePreKeyMessage(m.body)
						if err != nil {
							b.Fatal(err)
						}
						if _, _, err := bare.acct.NewInboundSession(&m.sender, pre); err != nil {
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

// preKeyStream is Bob's machine receiving the first messages of new
// devices, with the test server that holds his published one-time keys.
type preKeyStream struct {
	bob     *tdPeer
	server  *keysServer
	senders int // devices made so far
}

// newPreKeyStream opens Bob's machine over a store with the cache on or off
// and uploads his device keys and first one-time keys.
func newPreKeyStream(b *testing.B, noCache bool) *preKeyStream {
	clock := newStepClock()
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
	bob.update(b, func(tx *cryptostore.Tx) error {
		for i := range benchHistory {
			if err := tx.AddOlmMessage(benchHash(-1-i), "history"); err != nil {
				return err
			}
		}
		return nil
	})
	st := &preKeyStream{bob: bob, server: newKeysServer(b)}
	st.server.flush(st.client())
	return st
}

// client is Bob as the test server's client.
func (s *preKeyStream) client() *keysDevice { return &keysDevice{Machine: s.bob.Machine} }

// next tops Bob's published one-time keys up, has calls×n new devices
// claim one each, introduces the devices to Bob's store and returns their
// pre-key messages as to-device events, n per call. calls×n must not exceed
// the TargetOneTimeKeys that Bob keeps published.
func (s *preKeyStream) next(b *testing.B, calls, n int) [][]json.RawMessage {
	if calls*n > TargetOneTimeKeys {
		b.Fatalf("%d pre-key messages ahead, %d one-time keys published", calls*n, TargetOneTimeKeys)
	}
	s.server.receiveSync(s.client(), nil, nil)
	s.server.flush(s.client())
	out := make([][]json.RawMessage, calls)
	var devices []*cryptostore.Device
	for c := range out {
		events := make([]json.RawMessage, n)
		for i := range n {
			signed, name, ok := s.server.claim(s.bob.userID, s.bob.deviceID)
			var k oneTimeKeyJSON
			if !ok || json.Unmarshal(signed, &k) != nil || k.Fallback {
				b.Fatalf("claimed %s: %s", name, signed)
			}
			otk, err := olm.ParseCurve25519PublicKey(k.Key)
			if err != nil {
				b.Fatal(err)
			}
			s.senders++
			from, acct := newPreKeySender(b, s.senders)
			from.keysJSON = keysSign(b, from.userID, from.deviceID, acct, from.ownDeviceKeys())
			devices = append(devices, from.device())
			_, events[i] = preKeyMessage(b, from, acct, s.bob, otk)
		}
		out[c] = events
	}
	err := s.bob.store.Update(context.Background(), "bench devices", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		for _, d := range devices {
			if err := tx.PutDevice(d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// newPreKeySender returns Alice's device number n, new: its account, and
// the peer as messages and Bob's store name it.
func newPreKeySender(b *testing.B, n int) (*tdPeer, *olm.Account) {
	acct, err := olm.NewAccount(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	m := keysOnlyMachine("@alice:example.org", fmt.Sprintf("ALICE%06d", n), acct.IdentityKeys())
	return &tdPeer{Machine: m}, acct
}

// keysOnlyMachine is a Machine without a store: a device as messages and
// device keys name it.
func keysOnlyMachine(user, device string, ids olm.IdentityKeys) *Machine {
	m := &Machine{userID: user, deviceID: device}
	m.setIdentity(ids)
	return m
}

// preKeyMessage starts an outbound session from one device to another with
// the other's one-time key otk and returns its first message: the body and
// the to-device event carrying it.
func preKeyMessage(b *testing.B, from *tdPeer, acct *olm.Account, to *tdPeer, otk olm.Curve25519PublicKey) ([]byte, json.RawMessage) {
	s, err := acct.NewOutboundSession(rand.Reader, to.ids.Curve25519, otk)
	if err != nil {
		b.Fatal(err)
	}
	typ, body, err := s.Encrypt(rand.Reader, []byte(olmPayload(from, to, nil)))
	if err != nil || typ != olm.MessageTypePreKey {
		b.Fatal(typ, err)
	}
	content, _ := json.Marshal(olmContent{Algorithm: OlmAlgorithm, SenderKey: from.ids.Curve25519.String(),
		Ciphertext: map[string]olmCiphertext{to.ids.Curve25519.String(): {Type: int(typ), Body: b64.Encode(body)}}})
	return body, toDeviceEvent(from.userID, EventRoomEncrypted, content)
}

// barePreKeyReceiver is an olm.Account in memory that new devices start
// sessions with, its one-time keys topped up to TargetOneTimeKeys before
// each block of messages, as Bob's account is.
type barePreKeyReceiver struct {
	acct        *olm.Account
	peer        *tdPeer // the account as messages name it
	senders     int
	sessionSize int // the size of a new inbound session, sealed
	keySize     int // the size of a one-time key, sealed
}

// barePreKey is a pre-key message and its sender's identity key.
type barePreKey struct {
	sender olm.Curve25519PublicKey
	body   []byte
}

func newBarePreKeyReceiver(b *testing.B) *barePreKeyReceiver {
	acct, err := olm.NewAccount(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	r := &barePreKeyReceiver{acct: acct,
		peer: &tdPeer{Machine: keysOnlyMachine("@bob:example.org", "BOB", acct.IdentityKeys())}}
	// One message, received, gives the sizes of the rows a step writes.
	msgs := r.next(b, 1)
	pre, err := olm.ParsePreKeyMessage(msgs[0].body)
	if err != nil {
		b.Fatal(err)
	}
	s, _, err := acct.NewInboundSession(&msgs[0].sender, pre)
	if err != nil {
		b.Fatal(err)
	}
	r.sessionSize = len(s.Pickle(testStoreKey, []byte("olm_sessions")))
	k := acct.AllOneTimeKeys()[0]
	sealed, err := acct.PickleOneTimeKey(k.ID, testStoreKey, []byte("one_time_keys"))
	if err != nil {
		b.Fatal(err)
	}
	r.keySize = len(sealed)
	return r
}

// next tops the account's one-time keys up to TargetOneTimeKeys and
// returns a pre-key message from a new device to each of the n oldest, as
// Bob's machine keeps its keys published and a server hands out the oldest
// first. n must not exceed TargetOneTimeKeys.
func (r *barePreKeyReceiver) next(b *testing.B, n int) []barePreKey {
	if err := r.acct.GenerateOneTimeKeys(rand.Reader, TargetOneTimeKeys-len(r.acct.AllOneTimeKeys())); err != nil {
		b.Fatal(err)
	}
	r.acct.MarkKeysAsPublished()
	keys := r.acct.AllOneTimeKeys()[:n]
	msgs := make([]barePreKey, n)
	for i, k := range keys {
		r.senders++
		from, acct := newPreKeySender(b, r.senders)
		msgs[i].sender = acct.IdentityKeys().Curve25519
		msgs[i].body, _ = preKeyMessage(b, from, acct, r.peer, k.Key)
	}
	return msgs
}

// rawPreKeyDB is rawOlmDB with a one-time key table shaped like the store's,
// topped up to TargetOneTimeKeys rows before each block of commits.
type rawPreKeyDB struct {
	*rawOlmDB
	keys     []string // public keys of the one-time key rows, oldest first
	keyID    int64    // the last row's key ID
	keySize  int
	sessions int // sessions and hashes written
}

// rawPreKeyRow is what one pre-key message writes.
type rawPreKeyRow struct {
	oneTimeKey, sessionID, senderKey string
	blob                             []byte
	hash                             [32]byte
}

func newRawPreKeyDB(b *testing.B, sessionSize, keySize int) *rawPreKeyDB {
	r := &rawPreKeyDB{rawOlmDB: newRawOlmDB(b, sessionSize), keySize: keySize}
	err := r.db.Write(context.Background(), "setup", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		_, err := tx.Exec(`CREATE TABLE one_time_keys (key_id INTEGER PRIMARY KEY, public_key TEXT NOT NULL UNIQUE,
			published INTEGER NOT NULL DEFAULT 0, blob BLOB NOT NULL)`)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// next tops the one-time key rows up to TargetOneTimeKeys and returns the
// rows of n pre-key messages, each using one of the oldest keys.
func (r *rawPreKeyDB) next(b *testing.B, n int) []rawPreKeyRow {
	err := r.db.Write(context.Background(), "top up", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		for len(r.keys) < TargetOneTimeKeys {
			r.keyID++
			key := benchKeyString()
			blob := make([]byte, r.keySize)
			rand.Read(blob)
			if _, err := tx.Exec(`INSERT INTO one_time_keys (key_id, public_key, published, blob) VALUES (?, ?, 1, ?)`,
				r.keyID, key, blob); err != nil {
				return err
			}
			r.keys = append(r.keys, key)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	rows := make([]rawPreKeyRow, n)
	for i := range rows {
		r.sessions++
		rows[i] = rawPreKeyRow{oneTimeKey: r.keys[i], sessionID: benchKeyString(), senderKey: benchKeyString(),
			blob: make([]byte, len(r.blob)), hash: benchHash(r.sessions)}
		rand.Read(rows[i].blob)
	}
	r.keys = r.keys[n:]
	return rows
}

// commit writes the rows of n pre-key messages in one transaction: with
// lease, the lease row's stamp; per message, the deletion of its one-time
// key, its new session and its hash.
func (r *rawPreKeyDB) commit(b *testing.B, rows []rawPreKeyRow, lease bool) {
	err := r.db.Write(context.Background(), "raw commit", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		if err := stampRawLease(tx, lease); err != nil {
			return err
		}
		for _, row := range rows {
			res, err := tx.Exec(`DELETE FROM one_time_keys WHERE public_key = ?`, row.oneTimeKey)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("one-time key %s: %d rows deleted (%v)", row.oneTimeKey, n, err)
			}
			if _, err := tx.Exec(`INSERT INTO sessions (session_id, sender_key, created_at, last_used_at, blob)
				VALUES (?, ?, ?, ?, ?)`, row.sessionID, row.senderKey, rawMillis(r.sessions), rawMillis(r.sessions), row.blob); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO hashes (hash, sender_key, received_at) VALUES (?, ?, ?)`,
				row.hash[:], row.senderKey, rawMillis(r.sessions)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// benchKeyString is a random string shaped like a Curve25519 key or a
// session ID as the store writes them: 32 bytes in unpadded base64.
func benchKeyString() string {
	var k [32]byte
	rand.Read(k[:])
	return b64.Encode(k[:])
}
