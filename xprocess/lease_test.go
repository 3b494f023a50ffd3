package xprocess

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
)

func TestInvariant2FirstAcquisitionAndForeignChangesReportChanged(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")

	l := acquire(t, a)
	if l.Generation() != 1 || !l.Changed() {
		t.Fatalf("first acquisition: generation %d, changed %v", l.Generation(), l.Changed())
	}
	if err := write(a, l, 1); err != nil {
		t.Fatal(err)
	}
	l.Release()

	l = acquire(t, a)
	if l.Generation() != 1 || l.Changed() || l.DataStamp() != 1 {
		t.Fatalf("re-acquired after own write: generation %d, stamp %d, changed %v", l.Generation(), l.DataStamp(), l.Changed())
	}
	l.Release()

	lb := acquire(t, b)
	if lb.Generation() != 2 || !lb.Changed() {
		t.Fatalf("other process: generation %d, changed %v", lb.Generation(), lb.Changed())
	}
	lb.Release() // no write: the generation alone must still report the change

	l = acquire(t, a)
	if l.Generation() != 3 || !l.Changed() {
		t.Fatalf("back after another holder: generation %d, changed %v", l.Generation(), l.Changed())
	}
	l.Release()
}

func TestInvariant2RolledBackFenceReportsChanged(t *testing.T) {
	e := newEnv(t)
	a := e.process("app")
	l := acquire(t, a)
	if err := write(a, l, 1); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := a.db.Write(context.Background(), "fence then fail", 0, func(tx *sqlitedb.Tx) error {
		if err := l.Fence(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	l.Release()
	l = acquire(t, a)
	defer l.Release()
	if !l.Changed() {
		t.Fatal("a rolled-back fenced write left Changed false; the stamp it saw was never committed")
	}
}

func TestInvariant3FencingRejectsStaleWriter(t *testing.T) {
	e := newEnv(t)
	stale, fresh := e.process("app", slowRenewal), e.process("nse")
	ls := acquire(t, stale)
	if err := write(stale, ls, 1); err != nil {
		t.Fatal(err)
	}
	// The holder is alive, so its unexpired lease is respected.
	held := mustHeld(t, fresh)
	if held.Holder != stale.Holder().String() {
		t.Fatalf("LeaseExistsError names %q, want %q", held.Holder, stale.Holder())
	}
	// The holder freezes past its expiry and the other process takes over.
	e.exec("UPDATE xprocess_lease SET expires_at = 1")
	lf := acquire(t, fresh)
	if lf.Generation() != ls.Generation()+1 {
		t.Fatalf("takeover generation %d after %d", lf.Generation(), ls.Generation())
	}
	if err := write(fresh, lf, 2); err != nil {
		t.Fatal(err)
	}
	// The stale holder wakes and writes with the lease it had.
	if err := write(stale, ls, 3); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale write = %v, want ErrLeaseLost", err)
	}
	if !ls.Lost() || !errors.Is(context.Cause(ls.Context()), ErrLeaseLost) {
		t.Fatalf("stale lease: lost %v, context cause %v", ls.Lost(), context.Cause(ls.Context()))
	}
	if err := write(stale, ls, 4); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("second stale write = %v, want ErrLeaseLost", err)
	}
	if got := e.values(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("stored values %v, want [1 2]", got)
	}
	if r := e.row(); r.holder != fresh.Holder().String() || r.generation != lf.Generation() {
		t.Fatalf("row after stale write: %+v", r)
	}
	ls.Release()
	if err := ls.Fence(nil); !errors.Is(err, ErrLeaseNotHeld) {
		t.Fatalf("Fence after Release = %v, want ErrLeaseNotHeld", err)
	}
}

func TestInvariant3LostRenewalCancelsTheContext(t *testing.T) {
	e := newEnv(t)
	a := e.process("app", func(o *Options) { o.Duration, o.RenewEvery = time.Second, 10*time.Millisecond })
	l := acquire(t, a)
	// Another holder took the row while this one was not looking.
	e.exec("UPDATE xprocess_lease SET holder = 'x:1:0000000000000000', generation = generation + 1")
	select {
	case <-l.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the lease context was not cancelled after the row changed holder")
	}
	if !errors.Is(context.Cause(l.Context()), ErrLeaseLost) || !l.Lost() {
		t.Fatalf("cause %v, lost %v", context.Cause(l.Context()), l.Lost())
	}
}

func TestRenewalKeepsTheLease(t *testing.T) {
	e := newEnv(t)
	a := e.process("app", func(o *Options) { o.Duration, o.RenewEvery = 60*time.Millisecond, 10*time.Millisecond })
	b := e.process("nse")
	l := acquire(t, a)
	defer l.Release()
	first := e.row().expires
	deadline := time.Now().Add(10 * time.Second)
	for e.row().expires == first {
		if time.Now().After(deadline) {
			t.Fatal("the lease was never renewed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // past the first expiry
	mustHeld(t, b)
	if l.Lost() {
		t.Fatal("a renewed lease was lost")
	}
}

func TestReentrantAcquireIsCounted(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")
	l1 := acquire(t, a)
	l2 := acquire(t, a)
	if l1.Generation() != l2.Generation() || l2.Changed() || l2.Context() != l1.Context() {
		t.Fatal("a nested acquisition did not join the tenure")
	}
	l1.Release()
	l1.Release() // idempotent: must not drop l2's hold
	mustHeld(t, b)
	if err := write(a, l2, 1); err != nil {
		t.Fatalf("write under the remaining hold: %v", err)
	}
	l2.Release()
	lb, err := b.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire after the last release: %v", err)
	}
	lb.Release()
}

// skewed runs p's clock ahead by the returned duration's value, settable
// before the first acquisition.
func skewed(p *Process) *atomic.Int64 {
	var ahead atomic.Int64
	p.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	return &ahead
}

func TestTenureRunOutLocallyIsExtendedWithItsGeneration(t *testing.T) {
	e := newEnv(t)
	a := e.process("app", slowRenewal)
	ahead := skewed(a)
	l1 := acquire(t, a)
	// The tenure ran out by this process's clock, but nobody took the row:
	// acquiring again extends it, and nothing changed.
	ahead.Store(int64(2 * DefaultDuration))
	l2 := acquire(t, a)
	if l2.Generation() != l1.Generation() || l2.Changed() {
		t.Fatalf("re-acquired generation %d (was %d), changed %v", l2.Generation(), l1.Generation(), l2.Changed())
	}
	l1.Release()
	l2.Release()
}

func TestTenureOutlivedByAnotherHolderIsLost(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app", slowRenewal), e.process("nse")
	ahead := skewed(a)
	l1 := acquire(t, a)
	// a is frozen past its lease; b takes the row and gives it back before
	// a's renewal notices.
	e.exec("UPDATE xprocess_lease SET expires_at = 1")
	lb := acquire(t, b)
	lb.Release()
	ahead.Store(int64(2 * DefaultDuration))
	l3 := acquire(t, a)
	defer l3.Release()
	if l3.Generation() != l1.Generation()+2 || !l3.Changed() {
		t.Fatalf("generation %d after %d, changed %v", l3.Generation(), l1.Generation(), l3.Changed())
	}
	if !l1.Lost() || !errors.Is(context.Cause(l1.Context()), ErrLeaseLost) {
		t.Fatal("the tenure another holder outlived is not lost")
	}
	if err := write(a, l1, 1); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("write under the outlived tenure = %v", err)
	}
	if err := write(a, l3, 2); err != nil {
		t.Fatal(err)
	}
}
