package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/sqlitedb"
)

// rawDB is a SQLite file opened exactly as the store opens its own (WAL,
// query-only readers, one BEGIN IMMEDIATE writer), holding plain tables
// shaped like the store's: the floor a store operation is measured against.
type rawDB struct {
	db  *sqlitedb.DB
	key string // the one row of blobs
}

// newRawDB creates blobs(id, blob) with one row whose blob has size bytes,
// under a key as long as an Olm session ID, and hashes shaped like the
// store's olm_message_hashes.
func newRawDB(b *testing.B, size int) *rawDB {
	b.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, filepath.Join(b.TempDir(), "raw.db"), sqlitedb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	r := &rawDB{db: db, key: "Jx1sQW0T3m0e0nJm8w2b8b0Qx9a3kqf0Yb7m2X4tq1E"}
	blob := make([]byte, size)
	rand.Read(blob)
	err = db.Write(ctx, "setup", sqlitedb.Normal, func(tx *sql.Tx) error {
		for _, q := range []string{
			`CREATE TABLE blobs (id TEXT PRIMARY KEY, blob BLOB NOT NULL)`,
			`CREATE TABLE hashes (hash BLOB PRIMARY KEY, sender_key TEXT NOT NULL, received_at INTEGER NOT NULL) WITHOUT ROWID`,
		} {
			if _, err := tx.Exec(q); err != nil {
				return err
			}
		}
		_, err := tx.Exec(`INSERT INTO blobs (id, blob) VALUES (?, ?)`, r.key, blob)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// readBlob is the raw floor of a session read: one read transaction, one
// SELECT of the blob by primary key.
func (r *rawDB) readBlob(b *testing.B) []byte {
	var blob []byte
	err := r.db.Read(context.Background(), "raw read", func(tx *sql.Tx) error {
		return tx.QueryRow(`SELECT blob FROM blobs WHERE id = ?`, r.key).Scan(&blob)
	})
	if err != nil {
		b.Fatal(err)
	}
	return blob
}

// hashN is the n-th distinct message hash of a benchmark.
func hashN(n uint64) [32]byte { return sha256.Sum256(binary.BigEndian.AppendUint64(nil, n)) }

// BenchmarkOlmSessionRead reads an Olm session for decryption, as a receive
// step does first, from the cache ("cache-hit": a read transaction that
// checks the lease generation, then a clone) and with the cache off
// ("no-cache": the same transaction, a SELECT through the sender index,
// the AEAD open and the unpickle), beside the raw floor ("raw-select": a
// SELECT of a blob of the same size by primary key, in a read transaction on
// the same kind of connection). x-raw is each as a multiple of the floor;
// the target for no-cache is under 2.
func BenchmarkOlmSessionRead(b *testing.B) {
	c := newConversation(b)
	cachedPath, plainPath := storePath(b), storePath(b)
	cached := openStore(b, cachedPath, false)
	plain := openStore(b, plainPath, true)
	size := putSession(b, cached, cachedPath, c)
	putSession(b, plain, plainPath, c)
	raw := newRawDB(b, size)
	read := func(s *cryptostore.Store) func(b *testing.B) {
		view(b, s, func(tx *cryptostore.Tx) error { _, err := tx.OlmSessions(c.sender); return err }) // warm
		return func(b *testing.B) {
			view(b, s, func(tx *cryptostore.Tx) error {
				recs, err := tx.OlmSessions(c.sender)
				if err == nil && (len(recs) != 1 || recs[0].Session.ID() != c.mine.ID()) {
					b.Fatal("wrong session read")
				}
				return err
			})
		}
	}
	blob := map[string]float64{"blob-bytes": float64(size)}
	paired(b, "raw",
		func(b *testing.B) {
			if len(raw.readBlob(b)) != size {
				b.Fatal("short blob")
			}
		},
		benchCase{"cache-hit", read(cached), blob},
		benchCase{"no-cache", read(plain), blob},
	)
}

// BenchmarkGenerationCheck measures what the lease adds to a transaction.
// read: a View that looks up one message hash (which includes reading the
// lease row's generation and data stamp and checking the cache against
// them) beside a raw read transaction with the same lookup. write: an Update
// that records one message hash (which includes taking the lease inside the
// transaction, fencing it and releasing it) beside a raw write transaction
// with the same INSERT. The difference of the two ns/op is the check's cost
// per transaction.
func BenchmarkGenerationCheck(b *testing.B) {
	s := openStore(b, storePath(b), false)
	raw := newRawDB(b, 32)
	ctx := context.Background()
	const sender = "curve25519 key of the sender, 43 characters"
	probe := hashN(0)
	paired(b, "raw-read",
		func(b *testing.B) {
			err := raw.db.Read(ctx, "raw read", func(tx *sql.Tx) error {
				var n int
				return tx.QueryRow(`SELECT count(*) FROM hashes WHERE hash = ?`, probe[:]).Scan(&n)
			})
			if err != nil {
				b.Fatal(err)
			}
		},
		benchCase{"view", func(b *testing.B) {
			view(b, s, func(tx *cryptostore.Tx) error { _, err := tx.SeenOlmMessage(probe); return err })
		}, nil},
	)
	var n uint64
	paired(b, "raw-write",
		func(b *testing.B) {
			n++
			h := hashN(n)
			err := raw.db.Write(ctx, "raw write", sqlitedb.Normal, func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO hashes (hash, sender_key, received_at) VALUES (?, ?, ?)
					ON CONFLICT DO NOTHING`, h[:], sender, int64(n))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		},
		benchCase{"update", func(b *testing.B) {
			n++
			update(b, s, cryptostore.Normal, func(tx *cryptostore.Tx) error { return tx.AddOlmMessage(hashN(n), sender) })
		}, nil},
	)
}
