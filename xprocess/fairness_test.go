package xprocess

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/flock"
	"github.com/xolm/xolm/internal/sqlitedb"
)

// waitFor polls cond until it holds; it bounds a wait, it times nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFairnessWaiterGetsTheNextTurn(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")
	la := acquire(t, a)
	got := make(chan *Lease, 1)
	go func() {
		l, err := b.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	waitFor(t, "the waiter to register or claim the next turn", func() bool {
		return a.gate.othersWaiting() || e.row().want == b.Holder().String()
	})
	la.Release()
	// The lease is free (or already b's), but it is b's turn: a may not
	// slip back in, however quickly it asks.
	if held := mustHeld(t, a); held.Holder != b.Holder().String() && held.Holder != "" {
		t.Fatalf("a was blocked by %q, want the waiter %q", held.Holder, b.Holder())
	}
	lb := <-got
	if lb == nil {
		t.FailNow()
	}
	defer lb.Release()
	if r := e.row(); r.holder != b.Holder().String() || r.want == b.Holder().String() {
		t.Fatalf("after the waiter's turn the row is %+v", r)
	}
}

// attemptAt runs tryRow for holder on e's database.
func attemptAt(t *testing.T, e *env, holder string, wantTurn bool) attemptResult {
	t.Helper()
	var res attemptResult
	err := e.db().Write(context.Background(), "attempt", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		if err := Migrate(tx); err != nil {
			return err
		}
		var err error
		res, err = tryRow(tx, holder, newClock(time.Now(), DefaultDuration), DefaultDuration, wantTurn,
			func(id string) bool { return holderDead(livenessDir(e.path), id) })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// liveHolder makes a holder identity whose liveness file is locked, as if
// another process were running.
func liveHolder(t *testing.T, e *env, role string) string {
	t.Helper()
	h, _ := newHolder(role)
	f, err := markAlive(livenessDir(e.path), h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { markGone(f) })
	return h.String()
}

func TestFairnessHolderMayExtendItsOwnLease(t *testing.T) {
	e := newEnv(t)
	a, b := liveHolder(t, e, "app"), liveHolder(t, e, "nse")
	first := attemptAt(t, e, a, false)
	if !first.ok {
		t.Fatal("first attempt failed on an empty table")
	}
	if res := attemptAt(t, e, b, true); res.ok || res.blocker != a {
		t.Fatalf("b's attempt: %+v", res)
	}
	if r := e.row(); r.want != b {
		t.Fatalf("b did not claim the next turn: %+v", r)
	}
	again := attemptAt(t, e, a, false)
	if !again.ok || again.generation != first.generation {
		t.Fatalf("the holder could not extend its own lease while b waits: %+v", again)
	}
	// Once released, the holder must wait for b's turn.
	e.exec("UPDATE xprocess_lease SET expires_at = 0")
	if res := attemptAt(t, e, a, true); res.ok || res.blocker != b {
		t.Fatalf("a re-took a released lease ahead of the waiter: %+v", res)
	}
	if r := e.row(); r.want != b {
		t.Fatalf("a overwrote b's claim: %+v", r)
	}
	res := attemptAt(t, e, b, true)
	if !res.ok || res.generation != first.generation+1 {
		t.Fatalf("the waiter's turn: %+v", res)
	}
	if r := e.row(); r.want != "" {
		t.Fatalf("the waiter's claim outlived its turn: %+v", r)
	}
}

func TestFairnessStaleClaimsAreIgnored(t *testing.T) {
	if !flock.Supported {
		t.Skip("needs flock")
	}
	e := newEnv(t)
	a, b := liveHolder(t, e, "app"), liveHolder(t, e, "nse")
	attemptAt(t, e, a, false)
	now := time.Now().UnixMilli()

	// An expired claim does not block.
	e.exec("UPDATE xprocess_lease SET expires_at = 0, want = ?, want_expires_at = ?", b, now-1)
	if res := attemptAt(t, e, a, false); !res.ok {
		t.Fatalf("blocked by an expired claim: %+v", res)
	}
	// A claim from the far future (a clock went back) does not block.
	e.exec("UPDATE xprocess_lease SET expires_at = 0, want = ?, want_expires_at = ?", b, now+time.Hour.Milliseconds())
	if res := attemptAt(t, e, a, false); !res.ok {
		t.Fatalf("blocked by a far-future claim: %+v", res)
	}
	// A live claim by a dead process does not block, and is cleared.
	gone, _ := newHolder("nse")
	e.exec("UPDATE xprocess_lease SET expires_at = 0, want = ?, want_expires_at = ?", gone.String(), now+wantTTL.Milliseconds())
	if res := attemptAt(t, e, a, false); !res.ok {
		t.Fatalf("blocked by a dead waiter's claim: %+v", res)
	}
	if r := e.row(); r.want != "" {
		t.Fatalf("a dead waiter's claim survived: %+v", r)
	}
	// TryAcquire-style attempts never claim a turn.
	if res := attemptAt(t, e, b, false); res.ok {
		t.Fatal("b took a's unexpired lease")
	}
	if r := e.row(); r.want != "" {
		t.Fatalf("an attempt without waiting claimed the turn: %+v", r)
	}
}

func TestLeaseExistsErrorReportsTheClaim(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")
	l := acquire(t, a)
	defer l.Release()
	held := mustHeld(t, b)
	r := e.row()
	if held.Holder != a.Holder().String() || held.ExpiresAt.UnixMilli() != r.expires {
		t.Fatalf("LeaseExistsError %+v for row %+v", held, r)
	}
	if !errors.Is(held, ErrLeaseHeld) || held.Error() == "" {
		t.Fatal("LeaseExistsError does not match ErrLeaseHeld")
	}
}

// A transaction-scoped Write does not barge past a registered waiter: the
// writer that held last lets the waiter go first.
func TestFairnessScopedWriteYieldsToAWaiter(t *testing.T) {
	if !flock.Supported {
		t.Skip("waiters register with flock")
	}
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")
	ctx := context.Background()
	noop := func(*sqlitedb.Tx, int64, bool) error { return nil }
	if err := a.Write(ctx, "first", sqlitedb.Normal, noop, nil); err != nil {
		t.Fatal(err)
	}
	la := acquire(t, a)
	got := make(chan *Lease, 1)
	go func() {
		l, err := b.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	waitFor(t, "the waiter to register", a.gate.othersWaiting)
	la.Release()
	order := make(chan string, 2)
	go func() {
		if err := a.Write(ctx, "second", sqlitedb.Normal, noop, nil); err != nil {
			t.Error(err)
		}
		order <- "a wrote"
	}()
	lb := <-got
	order <- "b acquired"
	if first := <-order; first != "b acquired" {
		t.Fatalf("%s before the waiter had its turn", first)
	}
	lb.Release()
	<-order
}

// While another process is inside a transaction-scoped write, Acquire
// waits on the turnstile, registered as a waiter, rather than in SQLite's
// busy handler; it gets the lease when that transaction has committed.
func TestFairnessAcquireQueuesBehindAScopedWrite(t *testing.T) {
	if !flock.Supported {
		t.Skip("the turnstile needs flock")
	}
	e := newEnv(t)
	a, b := e.process("app"), e.process("nse")
	ctx := context.Background()
	inside, finish := make(chan struct{}), make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		wrote <- a.Write(ctx, "slow", sqlitedb.Normal, func(tx *sqlitedb.Tx, _ int64, _ bool) error {
			close(inside)
			<-finish
			return nil
		}, nil)
	}()
	<-inside
	got := make(chan *Lease, 1)
	go func() {
		l, err := b.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	waitFor(t, "the second process to register as waiting", a.gate.othersWaiting)
	select {
	case <-got:
		t.Fatal("Acquire returned while another process was in a transaction under the lease")
	default:
	}
	close(finish)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	l := <-got
	if l == nil {
		t.FailNow()
	}
	defer l.Release()
	if r := e.row(); r.holder != b.Holder().String() || r.generation != l.Generation() {
		t.Fatalf("row %+v after the waiter's turn", r)
	}
}
