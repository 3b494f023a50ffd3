package xprocess_test

import (
	"context"
	"errors"
	"testing"

	"github.com/xolm/xolm/xprocess"
)

// A process entering Suspended refuses new operations with ErrSuspended,
// lets the one in flight finish (and write), then releases the lease and
// runs its suspend hook (a WAL checkpoint); another process then gets the
// lease at once.
func TestInvariant13SuspendedProcessReleasesTheLease(t *testing.T) {
	path := dbPath(t)
	app := start(t, path, "-mode", "phases", "-role", "app")
	must := func(line string) {
		t.Helper()
		if err := app.Send(line); err != nil {
			t.Fatal(err)
		}
	}
	must("enter")
	expect(t, app, "entered")

	db := openDB(t, path)
	nse, err := xprocess.New(db, xprocess.Options{Role: "nse"})
	if err != nil {
		t.Fatal(err)
	}
	defer nse.Close()
	ctx := context.Background()
	if _, err := nse.TryAcquire(ctx); !errors.Is(err, xprocess.ErrLeaseHeld) {
		t.Fatalf("TryAcquire while the app holds the lease: %v", err)
	}

	must("suspend")
	waitFor(t, "the app to start suspending", func() bool {
		must("phase")
		return expect(t, app, "phase")[1] == "suspended"
	})
	must("try")
	if f := expect(t, app, "try"); f[1] != "suspended" {
		t.Fatalf("a new operation while suspending: %v", f)
	}
	if _, err := nse.TryAcquire(ctx); !errors.Is(err, xprocess.ErrLeaseHeld) {
		t.Fatalf("the lease was let go before the operation in flight finished: %v", err)
	}
	must("write 1")
	if f := expect(t, app, "ok"); len(f) != 1 {
		t.Fatalf("the operation in flight could not write: %v", f)
	}
	must("exit-op") // prints "exited", in any order with the lines below
	if f := expect(t, app, "hook"); f[2] != "ok" {
		t.Fatalf("suspend hook: %v", f)
	}
	if f := expect(t, app, "suspended"); f[1] != "ok" {
		t.Fatalf("SetPhase(Suspended): %v", f)
	}

	l, err := nse.TryAcquire(ctx)
	if err != nil {
		t.Fatalf("TryAcquire after the app suspended: %v", err)
	}
	defer l.Release()
	must("try")
	if f := expect(t, app, "try"); f[1] != "suspended" {
		t.Fatalf("a new operation after suspending: %v", f)
	}
	must("acquire")
	if f := expect(t, app, "acquire"); f[1] != "suspended" {
		t.Fatalf("Acquire after suspending: %v", f)
	}
	if n := queryInt(t, db, "SELECT count(*) FROM t WHERE v = 1"); n != 1 {
		t.Fatal("the in-flight operation's write is missing")
	}
}
