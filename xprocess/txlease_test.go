package xprocess

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
)

// A transaction-scoped Write made while this process holds a tenure whose
// renewal is late (by this process's clock it has run out, though nobody took
// the row) joins the tenure instead of releasing the row under it: no other
// process can take the lease while the tenure is current. Without flock
// (Windows), the turnstile cannot catch this, so it is tested without it.
func TestScopedWriteNeverReleasesALiveTenure(t *testing.T) {
	for _, noFlock := range []bool{false, true} {
		e := newEnv(t)
		a, b := e.process("app", slowRenewal), e.process("nse")
		if noFlock {
			a.gate, b.gate = &turnstile{}, &turnstile{}
		}
		ahead := skewed(a)
		l := acquire(t, a)
		time.Sleep(20 * time.Millisecond)
		ahead.Store(int64(DefaultDuration - 5*time.Millisecond))
		err := a.Write(context.Background(), "scoped", sqlitedb.Normal,
			func(tx *sqlitedb.Tx, gen int64, changed bool) error { return nil }, nil)
		ahead.Store(0)
		if err != nil {
			t.Fatalf("noFlock=%v: %v", noFlock, err)
		}
		lb, err := b.TryAcquire(context.Background())
		if err == nil {
			lb.Release()
			t.Fatalf("noFlock=%v: another process took the lease while this one's tenure is current", noFlock)
		}
		if !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("noFlock=%v: %v", noFlock, err)
		}
		if err := write(a, l, 1); err != nil {
			t.Fatalf("noFlock=%v: the tenure's next fenced write: %v", noFlock, err)
		}
		l.Release()
	}
}

// Invariant 13: a suspension whose context is already done still closes the
// store's files when nothing is in flight, and if a hook did fail, asking
// for Suspended again runs the hooks again instead of reporting success
// while the files stay open.
func TestInvariant13SuspendWithDoneContextClosesFiles(t *testing.T) {
	for i := 0; i < 20; i++ {
		e := newEnv(t)
		db := e.db()
		p, err := New(db, Options{Role: "app"})
		if err != nil {
			t.Fatal(err)
		}
		p.OnSuspend(db.Suspend)
		p.OnResume(db.Resume)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p.SetPhase(ctx, Suspended)
		if p.Phase() == Suspended {
			if err := p.SetPhase(context.Background(), Suspended); err != nil {
				t.Fatal(err)
			}
			werr := db.Write(context.Background(), "probe", sqlitedb.Normal, func(*sqlitedb.Tx) error { return nil })
			if !errors.Is(werr, sqlitedb.ErrSuspended) {
				t.Fatalf("round %d: suspended, but the database is still open (write: %v)", i, werr)
			}
		}
		p.Close()
	}
}
