// Package storexp_test runs the store across real OS processes: helper
// processes (package helper, driven over storeproc's line protocol) and the
// test process share one store file, as an app, its notification extension
// and a second window do.
package storexp_test

import (
	"crypto/rand"
	"database/sql"
	"github.com/xolm/xolm/internal/gobuild"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the raw connections that check the file

	"github.com/xolm/xolm/tests/storexp/storeproc"
)

// helperBin is the helper program, built once for all tests.
var helperBin string

func TestMain(m *testing.M) { gobuild.TestMain(m, "storexp", storeproc.Build, &helperBin) }

// within bounds every wait for a helper; it catches a hung test and times
// nothing.
const within = 30 * time.Second

// storeFile is a fresh store path with its key.
func storeFile(t *testing.T) (string, [32]byte) {
	t.Helper()
	var key [32]byte
	rand.Read(key[:])
	return filepath.Join(t.TempDir(), "crypto.db"), key
}

func start(t *testing.T, cfg storeproc.Config) *storeproc.Proc {
	t.Helper()
	p, err := storeproc.Start(helperBin, cfg, within)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// call sends req to p and returns the reply; a reply reporting an error is
// returned, for the test to judge.
func call(t *testing.T, p *storeproc.Proc, req storeproc.Request) storeproc.Reply {
	t.Helper()
	r, err := p.Call(req, within)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mustCall is call for a request that must succeed.
func mustCall(t *testing.T, p *storeproc.Proc, req storeproc.Request) storeproc.Reply {
	t.Helper()
	r := call(t, p, req)
	if !r.OK {
		t.Fatalf("helper %d (%s) %s: %s", p.Pid, p.Holder, req.Op, r.Err)
	}
	return r
}

// rawDB opens the store file with a plain database/sql connection, outside
// the store and its lease, for checks of the file itself.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// hashRecorded reports whether the row named label is in olm_message_hashes.
func hashRecorded(t *testing.T, db *sql.DB, label string) bool {
	t.Helper()
	h := storeproc.LabelHash(label)
	return count(t, db, `SELECT count(*) FROM olm_message_hashes WHERE hash = ?`, h[:]) == 1
}
