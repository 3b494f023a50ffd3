// Package store_test measures the crypto store end to end, as ratios taken
// in one run: reading an Olm session for decryption from the cache and from
// SQLite beside a raw SELECT of a blob of the same size, what the lease's
// generation check adds to every transaction, and a Synced commit beside a
// Normal one.
// Run with: go test -run '^$' -bench . ./bench/store
package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/sqlitedb"
)

var storeKey = &[32]byte{0x5e, 0x55, 0x10, 0x45}

func openStore(b *testing.B, path string, noCache bool) *cryptostore.Store {
	b.Helper()
	s, err := cryptostore.Open(context.Background(), path, cryptostore.Options{Key: storeKey, Role: "bench", NoCache: noCache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func update(b *testing.B, s *cryptostore.Store, dur cryptostore.Durability, fn func(tx *cryptostore.Tx) error) {
	if err := s.Update(context.Background(), "bench", dur, fn); err != nil {
		b.Fatal(err)
	}
}

func view(b *testing.B, s *cryptostore.Store, fn func(tx *cryptostore.Tx) error) {
	if err := s.View(context.Background(), "bench", fn); err != nil {
		b.Fatal(err)
	}
}

func storePath(b *testing.B) string { return filepath.Join(b.TempDir(), "crypto.db") }

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
	err = db.Write(ctx, "setup", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
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
	err := r.db.Read(context.Background(), "raw read", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow(`SELECT blob FROM blobs WHERE id = ?`, r.key).Scan(&blob)
	})
	if err != nil {
		b.Fatal(err)
	}
	return blob
}

// hashN is the n-th distinct message hash of a benchmark.
func hashN(n uint64) [32]byte { return sha256.Sum256(binary.BigEndian.AppendUint64(nil, n)) }

// A benchCase is one operation measured against a base operation.
type benchCase struct {
	name    string
	op      func(b *testing.B)
	metrics map[string]float64 // reported as they are, beside the timings
}

// block is how many operations of one side run between switches: enough to
// amortize a switch's cost (the Synced/Normal pragma, a clock read), few
// enough that both sides see the same load.
const block = 8

// paired runs each case as a sub-benchmark that alternates blocks of the
// case's operation with blocks of base's, timing each side. It reports ns/op
// for the case alone, base's ns/op over the same span as "<baseName>-ns/op",
// and their ratio as "x-<baseName>". Alternating keeps the ratio honest on a
// busy machine, where two benchmarks run one after the other may see
// different loads.
func paired(b *testing.B, baseName string, base func(b *testing.B), cases ...benchCase) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var baseTime, caseTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				for range block {
					base(b)
				}
				t1 := time.Now()
				for range block {
					c.op(b)
				}
				baseTime += t1.Sub(t0)
				caseTime += time.Since(t1)
			}
			ops := float64(b.N * block)
			b.ReportMetric(float64(caseTime.Nanoseconds())/ops, "ns/op")
			b.ReportMetric(float64(baseTime.Nanoseconds())/ops, baseName+"-ns/op")
			b.ReportMetric(float64(caseTime)/float64(baseTime), "x-"+baseName)
			for unit, v := range c.metrics {
				b.ReportMetric(v, unit)
			}
		})
	}
}
