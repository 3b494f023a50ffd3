package machine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
)

// toDeviceRelay answers a peer's key claims with fresh one-time keys of the other
// peers and delivers its to-device messages to them. It counts what passed.
type toDeviceRelay struct {
	peers             []*tdPeer
	claims, toDevices int
	delivered         []ToDeviceResult
}

func (rl *toDeviceRelay) find(user, device string) *tdPeer {
	for _, p := range rl.peers {
		if p.userID == user && p.deviceID == device {
			return p
		}
	}
	return nil
}

// flush sends from's pending claim and to-device requests (others are left
// to the keys tests) and reports each as sent.
func (rl *toDeviceRelay) flush(t testing.TB, from *tdPeer) {
	t.Helper()
	ctx := context.Background()
	reqs, err := from.OutgoingRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		var response any
		switch r.Type {
		case RequestKeysClaim:
			rl.claims++
			var body struct {
				OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
			}
			json.Unmarshal(r.Body, &body)
			keys := map[string]map[string]map[string]json.RawMessage{}
			for user, devices := range body.OneTimeKeys {
				keys[user] = map[string]map[string]json.RawMessage{}
				for device := range devices {
					id, signed := rl.find(user, device).oneTimeKey(t)
					keys[user][device] = map[string]json.RawMessage{id: signed}
				}
			}
			response = map[string]any{"one_time_keys": keys, "failures": map[string]any{}}
		case RequestToDevice:
			rl.toDevices++
			var body toDeviceMessages
			json.Unmarshal(r.Body, &body)
			for user, devices := range body.Messages {
				for device, content := range devices {
					to := rl.find(user, device)
					rl.delivered = append(rl.delivered, to.receive(t, toDeviceEvent(from.userID, r.EventType, content))...)
				}
			}
			response = map[string]any{}
		default:
			continue
		}
		resp, _ := json.Marshal(response)
		if err := from.MarkRequestAsSent(ctx, r.ID, r.Type, resp); err != nil {
			t.Fatal(err)
		}
	}
}

// pending counts p's pending requests of one type.
func (p *tdPeer) pending(t testing.TB, typ RequestType) int {
	t.Helper()
	reqs, err := p.OutgoingRequests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(slices.DeleteFunc(reqs, func(r *Request) bool { return r.Type != typ }))
}

// loseSessions archives p's sessions with other, as a restored backup or a
// lost write would leave it.
func (p *tdPeer) loseSessions(t testing.TB, other *tdPeer) {
	t.Helper()
	p.update(t, func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(other.ids.Curve25519.String())
		for _, r := range recs {
			if err := tx.ArchiveOlmSession(r.SenderKey, r.Session.ID()); err != nil {
				return err
			}
		}
		return err
	})
}

func wedgedWith(t testing.TB, r ToDeviceResult, want Unwedging) {
	t.Helper()
	var w *SessionWedgedError
	if !errors.As(r.Err, &w) || w.Unwedging != want || r.Event != nil {
		t.Fatalf("want wedged (%s), got %v", want, r.Err)
	}
}

// A peer that lost its session gets undecryptable messages: the first
// queues exactly one claim; the new session carries exactly one m.dummy,
// which the sender decrypts and answers on, and messages flow again. Within
// the hour no second claim goes out; after it, one does.
func TestUnwedgingClaimsOnceAndSendsOneDummy(t *testing.T) {
	alice, bob, clock := connectedPeers(t)
	rl := &toDeviceRelay{peers: []*tdPeer{alice, bob}}
	wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{"n":1}`))[0], alice, "m.test", `{"n":1}`)
	wantDecrypted(t, alice.receive(t, olmSend(t, bob, alice, "m.test", `{}`))[0], bob, "m.test", `{}`)

	bob.loseSessions(t, alice)
	first := olmSend(t, alice, bob, "m.test", `{"n":2}`)
	res := bob.receive(t, first, olmSend(t, alice, bob, "m.test", `{"n":3}`), first)
	wedgedWith(t, res[0], UnwedgeClaimQueued)
	wedgedWith(t, res[1], UnwedgeRateLimited)
	wedgedWith(t, res[2], UnwedgeRateLimited) // never decrypted, so not a duplicate
	if !errors.Is(res[0].Err, ErrNoOlmSession) || bob.pending(t, RequestKeysClaim) != 1 {
		t.Fatalf("%v; %d claims pending", res[0].Err, bob.pending(t, RequestKeysClaim))
	}

	rl.flush(t, bob) // the claim: a new session and its m.dummy
	if bob.pending(t, RequestToDevice) != 1 {
		t.Fatalf("%d to-device requests after the claim", bob.pending(t, RequestToDevice))
	}
	rl.flush(t, bob) // the m.dummy
	if rl.claims != 1 || rl.toDevices != 1 || len(rl.delivered) != 1 {
		t.Fatalf("%d claims, %d to-device requests", rl.claims, rl.toDevices)
	}
	wantDecrypted(t, rl.delivered[0], bob, EventDummy, `{}`)

	// Alice now writes on the session Bob started; Bob decrypts again.
	for range 3 {
		wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
	}
	rl.flush(t, bob)
	if rl.claims != 1 || rl.toDevices != 1 {
		t.Fatalf("after recovery: %d claims, %d to-device requests", rl.claims, rl.toDevices)
	}

	// Wedged again within the hour: nothing; after the hour: a new claim.
	bob.loseSessions(t, alice)
	wedgedWith(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], UnwedgeRateLimited)
	clock.Advance(UnwedgeInterval + time.Minute)
	wedgedWith(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], UnwedgeClaimQueued)
	rl.flush(t, bob)
	rl.flush(t, bob)
	if rl.claims != 2 || rl.toDevices != 2 {
		t.Fatalf("after the hour: %d claims, %d to-device requests", rl.claims, rl.toDevices)
	}
	wantDecrypted(t, rl.delivered[1], bob, EventDummy, `{}`)
	wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
}

// A wedged session with a device not known from a key query marks its user
// for a query and claims nothing; once the device is known, the next
// undecryptable message claims.
func TestUnwedgingUnknownDeviceQueriesFirst(t *testing.T) {
	clock := newStepClock()
	alice := newTDPeer(t, "@alice:example.org", "ALICE", clock)
	bob := newTDPeer(t, "@bob:example.org", "BOB", clock)
	alice.update(t, func(tx *cryptostore.Tx) error { return tx.PutDevice(bob.device()) })
	olmConnect(t, alice, bob)
	wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
	bob.loseSessions(t, alice)

	wedgedWith(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], UnwedgeDeviceUnknown)
	bob.store.View(context.Background(), "check", func(tx *cryptostore.Tx) error {
		dirty, _ := tx.TrackedUsers(true)
		if !slices.Contains(dirty, alice.userID) {
			t.Errorf("dirty users %v", dirty)
		}
		if at, _ := tx.LastUnwedged(alice.ids.Curve25519.String()); !at.IsZero() {
			t.Error("the attempt was recorded without a claim")
		}
		return nil
	})
	if n := bob.pending(t, RequestKeysClaim); n != 0 {
		t.Fatalf("%d claims for an unknown device", n)
	}
	bob.update(t, func(tx *cryptostore.Tx) error { return tx.PutDevice(alice.device()) })
	wedgedWith(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], UnwedgeClaimQueued)
}
