//go:build unix

package xprocess_test

import (
	"context"
	"database/sql"
	"syscall"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/tests/xprocess/harness"
	"github.com/xolm/xolm/xprocess"
)

// A holder frozen (SIGSTOP) past its lease is taken over at expiry, not
// before (it is alive), and when it wakes (SIGCONT) its write with the lease
// it held fails with ErrLeaseLost: the store holds only the new holder's data.
func TestInvariant3FrozenHolderCannotWriteAfterWaking(t *testing.T) {
	const lease = 300 * time.Millisecond
	path := dbPath(t)
	frozen := start(t, path, "-mode", "hold", "-role", "app", "-dur", lease.String())
	gen := expect(t, frozen, "held")[1]
	if err := frozen.Send("write 1"); err != nil {
		t.Fatal(err)
	}
	if f := expect(t, frozen, "ok"); len(f) != 1 {
		t.Fatalf("first write: %v", f)
	}
	freezeOutsideTransaction(t, frozen, path)
	stopped := time.Now()

	// This test process takes over, as another app process would.
	db := openDB(t, path)
	expires := queryInt(t, db, "SELECT expires_at FROM xprocess_lease")
	p, err := xprocess.New(db, xprocess.Options{Role: "nse", Duration: lease})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), expectWithin)
	defer cancel()
	l, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	t.Logf("taken over %v after SIGSTOP (lease %v), generation %s → %d", time.Since(stopped).Round(time.Millisecond), lease, gen, l.Generation())
	if now := time.Now().UnixMilli(); now < expires {
		t.Fatalf("a frozen but live holder was taken over %d ms before its lease ran out", expires-now)
	}
	err = db.Write(ctx, "takeover write", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		if err := l.Fence(tx); err != nil {
			return err
		}
		_, err := tx.Exec("INSERT INTO t VALUES (2)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := frozen.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := frozen.Send("write 3"); err != nil {
		t.Fatal(err)
	}
	if f := expect(t, frozen, "lost"); len(f) != 1 {
		t.Fatalf("woken write: %v", f)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM t"); n != 2 {
		t.Fatalf("%d rows in t, want 2", n)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM t WHERE v = 3"); n != 0 {
		t.Fatal("the woken holder's write was committed")
	}
	if h := queryString(t, db, "SELECT holder FROM xprocess_lease"); h != p.Holder().String() {
		t.Fatalf("row names %q, want the new holder %q", h, p.Holder())
	}
}

// freezeOutsideTransaction stops p with SIGSTOP at a moment when it holds no
// SQLite lock: a process frozen inside a write transaction (here, a renewal)
// would keep every other writer out, which is SQLite's limit, not the
// lease's.
func freezeOutsideTransaction(t *testing.T, p *harness.Proc, path string) {
	t.Helper()
	probe, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	for range 100 {
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		tx, err := probe.Begin()
		if err == nil {
			_, err = tx.Exec("UPDATE xprocess_lease SET name = name WHERE 0")
			tx.Rollback()
		}
		if err == nil {
			return
		}
		p.Signal(syscall.SIGCONT)
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the holder was inside a write transaction at every attempt to freeze it")
}
