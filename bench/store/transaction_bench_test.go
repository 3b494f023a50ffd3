package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/sqlitedb"
)

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
			err := raw.db.Read(ctx, "raw read", func(tx *sqlitedb.Tx) error {
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
			err := raw.db.Write(ctx, "raw write", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
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

// BenchmarkCommitDurability commits the rows of one receive step (the
// advanced Olm session and the message hash) with Normal durability, then
// the same rows with Synced, which fsyncs the WAL before Update returns,
// alternating blocks of each (a switch costs one pragma, amortized). x-normal is what a Synced commit costs as a multiple of a Normal one: the
// price of committing a send step (whose ratchet must never roll back after
// its ciphertext left) before returning it, paid only there.
func BenchmarkCommitDurability(b *testing.B) {
	c := newConversation(b)
	path := storePath(b)
	s := openStore(b, path, false)
	putSession(b, s, path, c)
	var n uint64
	step := func(dur cryptostore.Durability) func(b *testing.B) {
		return func(b *testing.B) {
			n++
			update(b, s, dur, func(tx *cryptostore.Tx) error {
				recs, err := tx.OlmSessions(c.sender)
				if err != nil {
					return err
				}
				recs[0].LastUsedAt = time.Now()
				if err := tx.PutOlmSession(recs[0]); err != nil {
					return err
				}
				return tx.AddOlmMessage(hashN(n), c.sender)
			})
		}
	}
	paired(b, "normal", step(cryptostore.Normal), benchCase{"synced", step(cryptostore.Synced), nil})
}
