package machine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Old message hashes are forgotten by maintenance, once per interval
// between the processes on the store, and recent ones keep duplicates
// recognized: ReceiveSyncChanges runs it on its own only in a machine that
// has run for a while, and not at every sync.
func TestMaintenancePrunesOldMessageHashes(t *testing.T) {
	alice, bob, clock := connectedPeers(t)
	old := olmSend(t, alice, bob, "m.test", `{"n":1}`)
	wantDecrypted(t, bob.receive(t, old)[0], alice, "m.test", `{"n":1}`)
	clock.Advance(OlmMessageHashRetention - time.Hour)
	recent := olmSend(t, alice, bob, "m.test", `{"n":2}`)
	wantDecrypted(t, bob.receive(t, recent)[0], alice, "m.test", `{"n":2}`)
	// That sync was the machine's first maintenance check: the tasks ran,
	// with nothing old enough to forget.
	if n := hashCount(t, bob); n != 2 {
		t.Fatalf("%d hashes after the first maintenance, want 2", n)
	}
	clock.Advance(2 * time.Hour)
	if rep, err := bob.Maintain(context.Background()); err != nil || rep.Ran {
		t.Fatalf("maintenance two hours after a run: %+v, %v; want not run", rep, err)
	}
	clock.Advance(MaintenanceInterval)
	rep, err := bob.Maintain(context.Background())
	if err != nil || !rep.Ran || rep.OlmMessageHashesPruned != 1 {
		t.Fatalf("maintenance: %+v, %v; want one hash pruned", rep, err)
	}
	if res := bob.receive(t, recent); !errors.Is(res[0].Err, ErrDuplicateOlmMessage) {
		t.Fatalf("a recent message again after maintenance: %v", res[0].Err)
	}
	if rep, err := bob.Maintain(context.Background()); err != nil || rep.Ran {
		t.Fatalf("maintenance again at once: %+v, %v; want not run", rep, err)
	}
	// Another process on the same store sees the run too.
	other := openTDPeer(t, bob.path, "nse", bob.userID, bob.deviceID, clock)
	if rep, err := other.Maintain(context.Background()); err != nil || rep.Ran {
		t.Fatalf("maintenance from another process: %+v, %v; want not run", rep, err)
	}

	// On its own: the recent hash ages out; a sync an interval later prunes
	// it without being asked.
	clock.Advance(OlmMessageHashRetention)
	bob.receive(t, olmSend(t, alice, bob, "m.test", `{"n":3}`))
	if n := hashCount(t, bob); n != 1 {
		t.Fatalf("%d hashes after a sync with maintenance due, want 1 (the new message's)", n)
	}
}

// A machine that has just started (a notification extension) does not run
// maintenance from ReceiveSyncChanges, however overdue it is.
func TestMaintenanceNotRunByAFreshMachine(t *testing.T) {
	alice, bob, clock := connectedPeers(t)
	wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
	clock.Advance(OlmMessageHashRetention + MaintenanceInterval)
	nse := openTDPeer(t, bob.path, "nse", bob.userID, bob.deviceID, clock)
	nse.receive(t, olmSend(t, alice, bob, "m.test", `{"n":1}`))
	if n := hashCount(t, bob); n != 2 {
		t.Fatalf("%d hashes after a fresh machine's sync, want both kept", n)
	}
}
