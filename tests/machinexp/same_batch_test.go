package machinexp_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

const (
	// sameBatchRounds is how many batches both processes are handed.
	sameBatchRounds = 8
	// sameBatchSize is how many of Bob's messages one batch carries.
	sameBatchSize = 6
)

// Both of Alice's processes are handed the same to-device batch at the
// same instant, as when the app and its notification extension both sync
// before either has acknowledged the batch (DESIGN.md invariant 7). Each
// event is decrypted by exactly one of them and reported as a duplicate by
// the other; none is reported wedged, and neither process starts recovering
// from a wedged session. The batches hold Bob's pre-key messages first, then,
// after Alice's replies turn the ratchet over, normal messages on new chains.
func TestSameBatchToBothProcesses(t *testing.T) {
	hs := newHomeserver(t)
	a := startAlice(t, hs, false)
	bob := newPeer(t, hs, "@bob:example.org", "BOB")
	bob.connect(t)
	mustCall(t, a.app, deviceline.Request{Op: deviceline.OpTrack, Users: []string{bob.UserID()}})
	hs.flushProc(a.app)
	procs := []*deviceline.Proc{a.app, a.nse}

	types := map[int]int{}
	won := map[string]int{}
	for round := range sameBatchRounds {
		batch := make([]json.RawMessage, sameBatchSize)
		for i := range batch {
			batch[i] = bob.sendRoomKey(t, fmt.Sprintf("!bob%d.%d:example.org", round, i))
			types[olmType(t, batch[i], a.app.Curve25519)]++
		}
		counts := hs.OneTimeKeyCounts(alice, aliceDevice)
		sync := deviceline.Request{Op: deviceline.OpSync, Events: batch, OneTimeKeyCounts: counts}
		replies := race(t, call{a.app, sync}, call{a.nse, sync})
		for i := range batch {
			var by []string
			for j, r := range replies {
				if len(r.Results) != len(batch) {
					t.Fatalf("round %d: the %s process reports %d results for %d events", round, procs[j].Role, len(r.Results), len(batch))
				}
				switch res := r.Results[i]; {
				case decrypted(res):
					by = append(by, procs[j].Role)
				case res.Reason != deviceline.ReasonDuplicate:
					t.Fatalf("round %d event %d: the %s process: %s (%s)", round, i, procs[j].Role, res.Reason, res.Err)
				}
			}
			if len(by) != 1 {
				t.Fatalf("round %d event %d decrypted by %v", round, i, by)
			}
			won[by[0]]++
		}
		for _, p := range procs {
			if u := unwedging(hs.flushProc(p)); len(u) > 0 {
				t.Fatalf("round %d: the %s process sent %s", round, p.Role, describe(u))
			}
		}
		// Alice replies, from each process in turn: Bob's next batch starts
		// a new chain.
		replier := procs[round%2]
		r := mustCall(t, replier, deviceline.Request{Op: deviceline.OpShare, Room: fmt.Sprintf("!alice%d:example.org", round), Users: []string{bob.UserID()}})
		if len(r.Requests) != 1 {
			t.Fatalf("the %s process's share: %d requests", replier.Role, len(r.Requests))
		}
		hs.send(replier, r.Requests[0])
		if n, err := bob.receive(t); err != nil || n != 1 {
			t.Fatalf("Bob receives Alice's reply %d: %d events, %v", round, n, err)
		}
	}
	if types[int(olm.MessageTypePreKey)] != sameBatchSize || types[int(olm.MessageTypeNormal)] != (sameBatchRounds-1)*sameBatchSize {
		t.Fatalf("message types sent: %v", types)
	}
	t.Logf("events decrypted by each process: %v", won)
}
