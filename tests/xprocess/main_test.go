// Package xprocess_test runs the lease across real OS processes: several
// leaseproc processes (and the test process itself) share one database.
package xprocess_test

import (
	"context"
	"github.com/xolm/xolm/internal/gobuild"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/tests/xprocess/harness"
)

// leaseproc is the helper binary, built once for all tests.
var leaseproc string

func TestMain(m *testing.M) { gobuild.TestMain(m, "leaseproc", harness.Build, &leaseproc) }

// expectWithin bounds every wait for a helper's line; it catches a hung
// test and times nothing.
const expectWithin = 30 * time.Second

// dbPath creates the database the helpers will share, with its tables,
// before they start: processes that open a new file at the same instant race
// to switch it to WAL, and the loser fails with SQLITE_BUSY.
func dbPath(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	if err := harness.Setup(leaseproc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func start(t *testing.T, path string, args ...string) *harness.Proc {
	t.Helper()
	p, err := harness.Start(leaseproc, append([]string{"-db", path}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	return p
}

func expect(t *testing.T, p *harness.Proc, word string) []string {
	t.Helper()
	f, err := p.Expect(word, expectWithin)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func openDB(t *testing.T, path string) *sqlitedb.DB {
	t.Helper()
	db, err := sqlitedb.Open(context.Background(), path, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t *testing.T, db *sqlitedb.DB, query string, args ...any) int64 {
	t.Helper()
	var v int64
	err := db.Read(context.Background(), "test", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow(query, args...).Scan(&v)
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func queryString(t *testing.T, db *sqlitedb.DB, query string, args ...any) string {
	t.Helper()
	var v string
	err := db.Read(context.Background(), "test", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow(query, args...).Scan(&v)
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor polls cond; the bound only catches a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(expectWithin)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func integrityOK(t *testing.T, db *sqlitedb.DB) {
	t.Helper()
	msgs, err := db.IntegrityCheck(context.Background())
	if err != nil || msgs != nil {
		t.Fatalf("integrity_check: %v %v", msgs, err)
	}
}
