package xprocess

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/flock"
)

func TestInvariant13BackgroundRefusesDeferrableWork(t *testing.T) {
	e := newEnv(t)
	p := e.process("app")
	ctx := context.Background()
	if err := p.SetPhase(ctx, Background); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Enter(ctx, Deferrable); !errors.Is(err, ErrBackground) {
		t.Fatalf("deferrable work in background: %v", err)
	}
	exit, err := p.Enter(ctx, Essential)
	if err != nil {
		t.Fatalf("essential work in background: %v", err)
	}
	exit()
	exit() // idempotent
	if err := p.SetPhase(ctx, Active); err != nil {
		t.Fatal(err)
	}
	exit, err = p.Enter(ctx, Deferrable)
	if err != nil {
		t.Fatalf("deferrable work when active: %v", err)
	}
	exit()
	if p.Phase() != Active || Suspended.String() != "suspended" {
		t.Fatalf("phase %v", p.Phase())
	}
}

func TestInvariant13SuspendFinishesInflightAndReleasesTheLease(t *testing.T) {
	e := newEnv(t)
	p, other := e.process("app"), e.process("nse")
	ctx := context.Background()
	var hookSawFree, resumed bool
	p.OnSuspend(func(context.Context) error {
		hookSawFree = e.row().expires == 0
		return nil
	})
	p.OnResume(func(context.Context) error { resumed = true; return nil })

	exit, err := p.Enter(ctx, Essential)
	if err != nil {
		t.Fatal(err)
	}
	l := acquire(t, p)
	suspended := make(chan error, 1)
	go func() { suspended <- p.SetPhase(ctx, Suspended) }()
	waitFor(t, "the phase to change", func() bool { return p.Phase() == Suspended })

	if _, err := p.Enter(ctx, Essential); !errors.Is(err, ErrSuspended) {
		t.Fatalf("new operation while suspending: %v", err)
	}
	mustHeld(t, other)
	// The in-flight operation finishes: it may still take holds and write.
	l2 := acquire(t, p)
	if err := write(p, l2, 1); err != nil {
		t.Fatalf("in-flight write while suspending: %v", err)
	}
	l2.Release()
	l.Release()
	select {
	case err := <-suspended:
		t.Fatalf("suspension finished before the in-flight operation: %v", err)
	default:
	}
	exit()
	if err := <-suspended; err != nil {
		t.Fatal(err)
	}
	if !hookSawFree {
		t.Fatal("the suspend hook ran before the lease was released")
	}
	if _, err := p.Acquire(ctx); !errors.Is(err, ErrSuspended) {
		t.Fatalf("Acquire while suspended: %v", err)
	}
	if flock.Supported {
		if _, err := os.Stat(livenessPath(p.aliveDir, p.Holder())); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a suspended process kept its liveness file")
		}
	}
	lo := acquire(t, other)
	if err := write(other, lo, 2); err != nil {
		t.Fatal(err)
	}
	lo.Release()

	if err := p.SetPhase(ctx, Active); err != nil {
		t.Fatal(err)
	}
	if !resumed {
		t.Fatal("the resume hook did not run")
	}
	l = acquire(t, p)
	defer l.Release()
	if !l.Changed() {
		t.Fatal("after another process wrote during the suspension, Changed is false")
	}
	if got := e.values(); len(got) != 2 {
		t.Fatalf("values %v", got)
	}
}

func TestInvariant13SuspendCancelsAWaitingAcquire(t *testing.T) {
	e := newEnv(t)
	p, other := e.process("app"), e.process("nse")
	ctx := context.Background()
	lo := acquire(t, other)
	defer lo.Release()
	exit, err := p.Enter(ctx, Essential)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		defer exit()
		_, err := p.Acquire(ctx)
		waited <- err
	}()
	waitFor(t, "the waiter to register or claim the next turn", func() bool {
		return other.gate.othersWaiting() || e.row().want == p.Holder().String()
	})
	if err := p.SetPhase(ctx, Suspended); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; !errors.Is(err, ErrSuspended) {
		t.Fatalf("waiting Acquire = %v, want ErrSuspended", err)
	}
	if other.gate.othersWaiting() {
		t.Fatal("a suspended process is still registered as waiting: it holds a file lock")
	}
}

func TestInvariant13SuspendCutShortKeepsRefusingWork(t *testing.T) {
	e := newEnv(t)
	p := e.process("app")
	exit, err := p.Enter(context.Background(), Essential)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.SetPhase(ctx, Suspended); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SetPhase with an operation in flight = %v", err)
	}
	if _, err := p.Enter(context.Background(), Essential); !errors.Is(err, ErrSuspended) {
		t.Fatalf("Enter after a cut-short suspension: %v", err)
	}
	exit()
	if err := p.SetPhase(context.Background(), Active); err != nil {
		t.Fatal(err)
	}
	exit, err = p.Enter(context.Background(), Deferrable)
	if err != nil {
		t.Fatalf("Enter after going back to active: %v", err)
	}
	exit()
	l := acquire(t, p)
	l.Release()
}

func TestInvariant13FailedResumeStaysSuspended(t *testing.T) {
	e := newEnv(t)
	p := e.process("app")
	ctx := context.Background()
	boom := errors.New("reopen failed")
	fail := true
	p.OnResume(func(context.Context) error {
		if fail {
			return boom
		}
		return nil
	})
	if err := p.SetPhase(ctx, Suspended); err != nil {
		t.Fatal(err)
	}
	if err := p.SetPhase(ctx, Active); !errors.Is(err, boom) {
		t.Fatalf("resume = %v", err)
	}
	if _, err := p.Acquire(ctx); !errors.Is(err, ErrSuspended) {
		t.Fatalf("Acquire after a failed resume: %v", err)
	}
	fail = false
	if err := p.SetPhase(ctx, Background); err != nil {
		t.Fatal(err)
	}
	if p.Phase() != Background {
		t.Fatalf("phase %v", p.Phase())
	}
	acquire(t, p).Release()
}
