// Package lease_test measures the cross-process lease end to end: the cost
// of an uncontended acquisition, handover latency and fairness between two
// processes, takeover after a SIGKILL, and renewal writes while holding.
// Run with: go test -run '^$' -bench . -benchtime 1x ./bench/lease
package lease_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/tests/xprocess/harness"
)

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// leaseproc builds the helper the first time a benchmark needs it.
func leaseproc(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "leaseproc")
		if buildErr == nil {
			binary, buildErr = harness.Build(buildDir)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binary
}

// dbPath creates the database and its tables before any helper starts:
// processes opening a new file at once race to switch it to WAL.
func dbPath(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "store.db")
	must(b, harness.Setup(leaseproc(b), path))
	return path
}

func openDB(b *testing.B, path string) *sqlitedb.DB {
	b.Helper()
	db, err := sqlitedb.Open(context.Background(), path, sqlitedb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func start(b *testing.B, path string, args ...string) *harness.Proc {
	b.Helper()
	p, err := harness.Start(leaseproc(b), append([]string{"-db", path}, args...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Kill() })
	return p
}

func expect(b *testing.B, p *harness.Proc, word string) []string {
	b.Helper()
	f, err := p.Expect(word, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// percentile returns the p-th percentile (0 < p ≤ 100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(fmt.Errorf("%w", err))
	}
}

type harnessProc = harness.Proc

func sortTenures(ts []tenure) {
	slices.SortFunc(ts, func(a, b tenure) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
}

func expiresAt(b *testing.B, db *sqlitedb.DB) int64 {
	b.Helper()
	var e int64
	must(b, db.Read(context.Background(), "expiry", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow("SELECT expires_at FROM xprocess_lease").Scan(&e)
	}))
	return e
}
