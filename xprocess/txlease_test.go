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

// Scoped writes tell fn whether state may have changed since this process
// last saw it, on the one-statement retake (this process released last,
// nobody waits) as on the full take: unchanged for a process's consecutive
// writes, changed after another process wrote, and each write leaves the
// lease released, its data stamp one higher, and the generation up exactly
// when the writer changed.
func TestScopedWritesReportChangesAndLeaveTheLeaseFree(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")
	type step struct {
		gen     int64
		changed bool
	}
	scoped := func(p *Process) step {
		t.Helper()
		var s step
		err := p.Write(context.Background(), "scoped", sqlitedb.Normal,
			func(tx *sqlitedb.Tx, gen int64, changed bool) error {
				s = step{gen, changed}
				_, err := tx.Exec("CREATE TABLE IF NOT EXISTS t(v INTEGER)")
				return err
			}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	row := func() (holder string, expires, gen, stamp int64) {
		t.Helper()
		err := a.db.Read(context.Background(), "row", func(tx *sqlitedb.Tx) error {
			return tx.QueryRow(`SELECT holder, expires_at, generation, data_stamp FROM xprocess_lease WHERE name = ?`,
				leaseName).Scan(&holder, &expires, &gen, &stamp)
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	first := scoped(a)
	if !first.changed {
		t.Error("a process's first write must treat state as changed")
	}
	_, _, _, stamp0 := row()
	for i := range 3 {
		if s := scoped(a); s.changed || s.gen != first.gen {
			t.Fatalf("consecutive write %d by one process: %+v, want generation %d unchanged", i, s, first.gen)
		}
		holder, expires, gen, stamp := row()
		if holder != a.id || expires != 0 || gen != first.gen || stamp != stamp0+int64(i)+1 {
			t.Fatalf("row after write %d: holder %q expires %d generation %d stamp %d", i, holder, expires, gen, stamp)
		}
	}
	if s := scoped(b); !s.changed || s.gen != first.gen+1 {
		t.Fatalf("other process's write: %+v, want changed at generation %d", s, first.gen+1)
	}
	if s := scoped(a); !s.changed || s.gen != first.gen+2 {
		t.Fatalf("write after the other process's: %+v, want changed at generation %d", s, first.gen+2)
	}
	if s := scoped(a); s.changed {
		t.Fatalf("the next write: %+v, want unchanged", s)
	}
	l, err := b.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("a scoped write left the lease held: %v", err)
	}
	l.Release()
}

// Each of the scoped take's three ways (resume the row as this process left
// it, retake a lease it released last, the full take) finds the same
// generation and stamps, and none is tried where it does not apply.
func TestScopedTakeWays(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")
	noop := func(tx *sqlitedb.Tx, gen int64, changed bool) error { return nil }
	if err := a.Write(context.Background(), "first", sqlitedb.Normal, noop, nil); err != nil {
		t.Fatal(err)
	}
	left := a.seen
	take := func(p *Process, prev seen) (st scopedTake, err error) {
		t.Helper()
		werr := p.db.Write(context.Background(), "take", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
			st, err = p.takeScoped(tx, prev, func(string) bool { return false })
			return errors.New("roll back") // each way is looked at from the same row
		})
		if werr == nil {
			t.Fatal("the probe committed")
		}
		return st, err
	}
	for _, c := range []struct {
		name string
		prev seen
	}{
		{"resume", left},
		{"retake (this process's view is not the row's)", seen{}},
		{"retake (a stamp this process did not leave)", seen{gen: left.gen, stamp: left.stamp - 1, any: true}},
	} {
		st, err := take(a, c.prev)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if want := (scopedTake{gen: left.gen, before: left.stamp, after: left.stamp + 1}); st != want {
			t.Fatalf("%s: %+v, want %+v", c.name, st, want)
		}
	}
	st, err := take(b, left) // another process: the full take, generation up, release at the end
	if err != nil {
		t.Fatal(err)
	}
	if want := (scopedTake{gen: left.gen + 1, before: left.stamp, release: true}); st != want {
		t.Fatalf("full take: %+v, want %+v", st, want)
	}
	l := acquire(t, a)
	defer l.Release()
	if _, err := take(b, left); !errors.Is(err, errTxBusy) {
		t.Fatalf("take while another process holds the lease: %v, want errTxBusy", err)
	}
}
