// Package machine_test measures the crypto state machine's room event steps
// end to end, through a real on-disk store, as ratios taken in one run:
// Megolm room event decryption (one event per transaction, and per event in
// a batch of 100) with the cache on and off, beside the bare megolm Decrypt
// and beside one raw SQLite commit of the same rows; decryption at message
// index 0, 10,000 and 100,000; and Megolm encryption beside the bare Encrypt.
//
// Run with: go test -run '^$' -bench . ./bench/machine
package machine_test

import (
	"context"
	"crypto/rand"
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
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

var storeKey = &[32]byte{0xbe, 0x4c, 0x11}

const (
	room   = "!bench:example.org"
	sender = "@alice:example.org"
)

// openMachine opens Bob's machine on a store file.
func openMachine(b *testing.B, path string, noCache bool) *machine.Machine {
	b.Helper()
	ctx := context.Background()
	s, err := cryptostore.Open(ctx, path, cryptostore.Options{Key: storeKey, Role: "bench", NoCache: noCache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m, err := machine.Open(ctx, s, "@bob:example.org", "BOB", machine.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func storePath(b *testing.B) string { return filepath.Join(b.TempDir(), "crypto.db") }

// roomStream is Alice's side of a room: an outbound Megolm session producing
// room events, and a bare inbound copy of it for the protocol-only floor.
type roomStream struct {
	alice *olm.Account
	out   *megolm.OutboundGroupSession
	bare  *megolm.InboundGroupSession
	n     int
	ahead []roomMessage // made by take, not yet taken
}

// roomMessage is a raw ciphertext and the room event carrying it.
type roomMessage struct {
	ct []byte
	ev json.RawMessage
}

func newRoomStream(b *testing.B) *roomStream {
	b.Helper()
	alice, err := olm.NewAccount(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	out, err := megolm.NewOutboundGroupSession(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	bare, err := megolm.NewInboundGroupSession(out.SessionKey())
	if err != nil {
		b.Fatal(err)
	}
	return &roomStream{alice: alice, out: out, bare: bare}
}

// plaintext is a typical text message's decrypted payload.
var plaintext = []byte(`{"type":"m.room.message","content":{"msgtype":"m.text","body":"Are we still on for lunch at noon? I can book the usual place."},"room_id":"` + room + `"}`)

// next encrypts the next message and returns its raw ciphertext and the room
// event carrying it.
func (r *roomStream) next(b *testing.B) ([]byte, json.RawMessage) {
	ct, err := r.out.Encrypt(plaintext)
	if err != nil {
		b.Fatal(err)
	}
	r.n++
	content, _ := json.Marshal(map[string]string{"algorithm": machine.MegolmAlgorithm,
		"sender_key": r.alice.IdentityKeys().Curve25519.String(), "device_id": "ALICE",
		"session_id": r.out.ID(), "ciphertext": b64.Encode(ct)})
	ev, _ := json.Marshal(map[string]any{"type": machine.EventRoomEncrypted, "event_id": fmt.Sprintf("$event%09d", r.n),
		"sender": sender, "origin_server_ts": 1_700_000_000_000 + r.n, "content": json.RawMessage(content)})
	return ct, ev
}

// take returns the next message as next does, but makes them a block at a
// time: a measured side then runs its block of operations back to back, as
// the raw commit side does, rather than each after a Megolm encryption and
// JSON encoding that leave the processor's caches full of other work.
func (r *roomStream) take(b *testing.B) ([]byte, json.RawMessage) {
	if len(r.ahead) == 0 {
		for range block + 1 { // with interleave's operation that is not measured
			ct, ev := r.next(b)
			r.ahead = append(r.ahead, roomMessage{ct, ev})
		}
	}
	m := r.ahead[0]
	r.ahead = r.ahead[1:]
	return m.ct, m.ev
}

// install stores the stream's session in m's store, from its current index,
// with Alice's device known from a key query.
func (r *roomStream) install(b *testing.B, m *machine.Machine) {
	b.Helper()
	in, err := megolm.NewInboundGroupSession(r.out.SessionKey())
	if err != nil {
		b.Fatal(err)
	}
	ids := r.alice.IdentityKeys()
	err = m.Store().Update(context.Background(), "bench setup", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		if err := tx.PutDevice(&cryptostore.Device{UserID: sender, DeviceID: "ALICE", Curve25519: ids.Curve25519.String(),
			Ed25519: ids.Ed25519.String(), KeysJSON: []byte(`{}`)}); err != nil {
			return err
		}
		_, err := tx.PutInboundGroupSession(&cryptostore.InboundGroupSessionRecord{RoomID: room,
			SenderKey: ids.Curve25519.String(), SigningKey: ids.Ed25519.String(), Session: in, ImportedAt: time.Now()})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// bareDecrypt is the protocol floor: the bare Megolm decryption of ct.
func (r *roomStream) bareDecrypt(b *testing.B, ct []byte) {
	if _, _, err := r.bare.Decrypt(ct); err != nil {
		b.Fatal(err)
	}
}

// rawDB is a SQLite file opened as the store opens its own, with tables
// shaped like the store's inbound group sessions, replay records and lease
// row: the floor a committed step is measured against.
type rawDB struct {
	db   *sqlitedb.DB
	blob []byte
	n    int // replay records written
	c    int // commits
}

func newRawDB(b *testing.B, blobSize int) *rawDB {
	b.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(b.TempDir(), "raw.db"), sqlitedb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	r := &rawDB{db: db, blob: make([]byte, blobSize)}
	rand.Read(r.blob)
	err = db.Write(ctx, "setup", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		for _, q := range []string{
			`CREATE TABLE sessions (room_id TEXT NOT NULL, session_id TEXT NOT NULL, sender_key TEXT NOT NULL,
				signing_key TEXT NOT NULL, first_known_index INTEGER NOT NULL, forwarded INTEGER NOT NULL,
				shared_history INTEGER NOT NULL, imported_at INTEGER NOT NULL, blob BLOB NOT NULL,
				PRIMARY KEY (room_id, session_id)) WITHOUT ROWID`,
			`CREATE TABLE replay (session_id TEXT NOT NULL, message_index INTEGER NOT NULL, event_id TEXT NOT NULL,
				origin_ts INTEGER NOT NULL, PRIMARY KEY (session_id, message_index)) WITHOUT ROWID`,
			`CREATE TABLE lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, stamp INTEGER NOT NULL)`,
			`INSERT INTO lease VALUES ('lease', 'holder', 0)`,
		} {
			if _, err := tx.Exec(q); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`INSERT INTO sessions VALUES (?, ?, ?, ?, 0, 0, 0, 0, ?)`,
			room, rawSessionID, rawSessionID, rawSessionID, r.blob)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// rawSessionID stands for a session ID, a sender key and a signing key
// alike: each is 43 characters of base64.
const rawSessionID = "8sdNGgmLft8osylLK9ij3IotBLyQQufe/KngiW4Dpq0"

// commit writes the rows of events decrypted events in one transaction: with
// lease, the lease row's stamp that tells other processes the state moved on
// (as every step of the store writes it); a replay record per event; and the
// session's blob, which every step that moves a session's ratchet rewrites.
func (r *rawDB) commit(b *testing.B, dur sqlitedb.Durability, events int, lease bool) {
	err := r.db.Write(context.Background(), "raw commit", dur, func(tx *sqlitedb.Tx) error {
		if lease {
			if _, err := tx.Exec(`UPDATE lease SET stamp = stamp + 1 WHERE name = ? AND holder = ?`,
				"lease", "holder"); err != nil {
				return err
			}
		}
		for range events {
			r.n++
			if _, err := tx.Exec(`INSERT INTO replay (session_id, message_index, event_id, origin_ts) VALUES (?, ?, ?, ?)
				ON CONFLICT DO NOTHING`, rawSessionID, r.n, fmt.Sprintf("$event%09d", r.n), r.n); err != nil {
				return err
			}
		}
		// A sealed blob is new bytes every time; an unchanged one would not
		// even be written.
		r.c++
		binary.BigEndian.PutUint64(r.blob, uint64(r.c))
		_, err := tx.Exec(`UPDATE sessions SET blob = ? WHERE room_id = ? AND session_id = ?`, r.blob, room, rawSessionID)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// block is how many measured operations of one side run before the next
// side's turn; each block starts with one more, not measured
// (benchcmp.Interleave).
const block = 8

type side = benchcmp.Side

// interleave runs the sides' blocks in turn (benchcmp.Interleave).
func interleave(b *testing.B, sides ...side) []float64 {
	return benchcmp.Interleave(b, block, sides...)
}

var timed = benchcmp.Timed
