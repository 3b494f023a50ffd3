package storexp_test

import (
	"testing"
	"time"

	"github.com/xolm/xolm/tests/storexp/storeproc"
)

// phaseLease is the lease duration of TestSuspendedProcessLetsGo's processes:
// long, so that another process getting the lease at once shows it was
// released, not waited out.
const phaseLease = 20 * time.Second

// takeoverWithin is how soon after a suspension another process must have
// committed under the lease; far below phaseLease.
const takeoverWithin = 2 * time.Second

// Invariant 13 at the store level, across processes. The app process holds
// the lease (as for a batch of steps) and has a write transaction in flight
// when it is suspended: the transaction finishes and commits, while a new
// one started during the suspension fails with ErrSuspended. Once
// suspended, the process holds no file of the store open (iOS kills a
// suspended process that holds file locks: /proc/<pid>/fd names neither the
// database, its -wal and -shm, nor the lease's side files), and the WAL is
// checkpointed (empty or gone). The extension process takes
// the lease at once, long before it would expire, and commits. Resumed, the
// app reads the extension's row and writes again.
func TestSuspendedProcessLetsGo(t *testing.T) {
	path, key := storeFile(t)
	app := start(t, storeproc.Config{DB: path, Key: key, Role: "app", Lease: phaseLease})
	nse := start(t, storeproc.Config{DB: path, Key: key, Role: "nse", Lease: phaseLease})

	mustCall(t, app, storeproc.Request{Op: storeproc.OpRecord, Label: "before"})
	if r := mustCall(t, app, storeproc.Request{Op: storeproc.OpFiles}); len(r.Files) == 0 || r.WALSize <= 0 {
		t.Fatalf("an active app shows no open store files or an empty WAL (%v, %d bytes): the checks below cannot fail", r.Files, r.WALSize)
	}
	mustCall(t, app, storeproc.Request{Op: storeproc.OpAcquire})
	hold, err := app.Send(storeproc.Request{Op: storeproc.OpHold, Label: "in flight"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.WaitEvent(hold, "inside", within); err != nil {
		t.Fatal(err)
	}
	suspend, err := app.Send(storeproc.Request{Op: storeproc.OpPhase, Phase: "suspended"})
	if err != nil {
		t.Fatal(err)
	}
	// The suspension refuses new work at once, before the held transaction ends.
	refused := waitRefused(t, app)
	if refused.Kind != storeproc.KindSuspended {
		t.Fatalf("a transaction started while suspending: %s (%s)", refused.Err, refused.Kind)
	}
	for _, r := range app.Replies() {
		if r.ID == suspend && r.Event == "" {
			t.Fatal("the suspension finished before the in-flight transaction")
		}
	}
	mustCall(t, app, storeproc.Request{Op: storeproc.OpFinish, Target: hold})
	if r, err := app.Wait(hold, within); err != nil || !r.OK {
		t.Fatalf("the in-flight transaction did not commit: %v %s", err, r.Err)
	}
	suspended, err := app.Wait(suspend, within)
	if err != nil {
		t.Fatal(err)
	}
	if !suspended.OK {
		t.Fatalf("suspend: %s", suspended.Err)
	}
	startTakeover := time.Now()
	if r := mustCall(t, nse, storeproc.Request{Op: storeproc.OpSeen, Label: "in flight"}); !r.Seen {
		t.Fatal("the transaction that finished during the suspension is not in the store")
	}
	mustCall(t, nse, storeproc.Request{Op: storeproc.OpRecord, Label: "from the extension"})
	if took := time.Since(startTakeover); took > takeoverWithin {
		t.Errorf("the extension waited %v for the lease a suspended process should have released", took)
	}

	if len(suspended.Files) != 0 {
		t.Errorf("the suspended process still holds store files open:\n%v", suspended.Files)
	}
	if suspended.WALSize > 0 {
		t.Errorf("the suspended process left a WAL of %d bytes: not checkpointed", suspended.WALSize)
	}
	if r := call(t, app, storeproc.Request{Op: storeproc.OpSeen, Label: "in flight"}); r.OK || r.Kind != storeproc.KindSuspended {
		t.Errorf("a suspended process ran a transaction: ok=%v %s", r.OK, r.Err)
	}

	mustCall(t, app, storeproc.Request{Op: storeproc.OpPhase, Phase: "active"})
	if r := mustCall(t, app, storeproc.Request{Op: storeproc.OpSeen, Label: "from the extension"}); !r.Seen {
		t.Fatal("the resumed app does not see the extension's commit")
	}
	mustCall(t, app, storeproc.Request{Op: storeproc.OpSeen, Label: "in flight"})
}

// waitRefused starts transactions in p until one is refused, which must
// happen while its suspension waits for the in-flight transaction, and
// returns the refusal.
func waitRefused(t *testing.T, p *storeproc.Proc) storeproc.Reply {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		r := call(t, p, storeproc.Request{Op: storeproc.OpSeen, Label: "in flight"})
		if !r.OK {
			return r
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("new transactions still run after the suspension began")
	return storeproc.Reply{}
}
