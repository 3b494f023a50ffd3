package machine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// keysSessions returns the machine's Olm sessions with the device whose
// Curve25519 key is given.
func keysSessions(t testing.TB, m *Machine, curve string) []*cryptostore.OlmSessionRecord {
	t.Helper()
	var out []*cryptostore.OlmSessionRecord
	err := m.store.View(t.Context(), "test sessions", func(tx *cryptostore.Tx) error {
		var err error
		out, err = tx.OlmSessions(curve)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A claim for bob's device creates a session whose first message bob's
// account accepts; the claim is queued once however often it is asked for.
func TestClaimCreatesSessionThePeerAccepts(t *testing.T) {
	ctx := context.Background()
	s, alice, bob := keysPair(t)
	bobCurve := bob.IdentityKeys().Curve25519.String()
	claim, err := alice.GetMissingSessions(ctx, []string{"@bob:example.org", "@alice:example.org"})
	if err != nil || claim == nil || claim.Type != RequestKeysClaim {
		t.Fatalf("claim %v: %v", claim, err)
	}
	var body keysClaimBody
	json.Unmarshal(claim.Body, &body)
	if len(body.OneTimeKeys) != 1 || body.OneTimeKeys["@bob:example.org"]["BOB"] != "signed_curve25519" {
		t.Fatalf("claim body %s", claim.Body)
	}
	again, err := alice.GetMissingSessions(ctx, []string{"@bob:example.org"})
	if err != nil || again == nil || again.ID != claim.ID {
		t.Fatalf("second call: %v, %v", again, err)
	}
	if pending := keysRequestsOf(t, alice.Machine, RequestKeysClaim); len(pending) != 1 || pending[0].ID != claim.ID {
		t.Fatalf("pending claims %v", pending)
	}
	if err := alice.MarkRequestAsSent(ctx, claim.ID, RequestKeysClaim, s.answer(alice, claim)); err != nil {
		t.Fatal(err)
	}
	if sessions := keysSessions(t, alice.Machine, bobCurve); len(sessions) != 1 {
		t.Fatalf("%d sessions with bob", len(sessions))
	}
	if none, err := alice.GetMissingSessions(ctx, []string{"@bob:example.org"}); none != nil || err != nil {
		t.Fatalf("missing sessions after the claim: %v, %v", none, err)
	}

	devs := keysDevices(t, alice.Machine, "@bob:example.org")
	var content json.RawMessage
	err = alice.store.Update(ctx, "encrypt", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		var err error
		content, err = alice.encryptToDevice(tx, devs[0], EventDummy, json.RawMessage(`{}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var c olmContent
	json.Unmarshal(content, &c)
	raw, _ := b64.Decode(c.Ciphertext[bobCurve].Body)
	pre, err := olm.ParsePreKeyMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	bobAcct := keysAccount(t, bob.Machine).Account
	if _, _, err := bobAcct.NewInboundSession(nil, pre); err != nil {
		t.Fatalf("bob cannot open the session: %v", err)
	}
	if len(bobAcct.AllOneTimeKeys()) != TargetOneTimeKeys-1 {
		t.Fatal("the session was not made from one of bob's one-time keys")
	}
}

// A claimed key without the device's valid signature creates no session; a
// key for a device nobody asked about or no query listed is ignored.
func TestClaimRefusesBadKeys(t *testing.T) {
	ctx := context.Background()
	s, alice, bob := keysPair(t)
	impostor, _ := olm.NewAccount(rand.Reader)
	impostor.GenerateOneTimeKeys(rand.Reader, 1)
	forged := keysSign(t, "@bob:example.org", "BOB", impostor, oneTimeKeyJSON{Key: impostor.OneTimeKeys()[0].Key.String()})
	var genuine json.RawMessage
	for _, k := range s.otks["@bob:example.org"]["BOB"] {
		genuine = k
		break
	}
	var swapped map[string]any
	json.Unmarshal(genuine, &swapped)
	swapped["key"] = impostor.OneTimeKeys()[0].Key.String()
	swappedRaw, _ := json.Marshal(swapped)
	dev := keysDevices(t, alice.Machine, "@bob:example.org")[0]
	cases := []struct {
		name   string
		keys   map[string]json.RawMessage
		reason error
	}{
		{"signed by another key", map[string]json.RawMessage{"signed_curve25519:AAAAAQ": forged}, ErrBadKeySignature},
		{"key swapped under the signature", map[string]json.RawMessage{"signed_curve25519:AAAAAQ": swappedRaw}, ErrBadKeySignature},
		{"unsigned", map[string]json.RawMessage{"signed_curve25519:AAAAAQ": json.RawMessage(`{"key":"` + impostor.OneTimeKeys()[0].Key.String() + `"}`)}, ErrBadKeySignature},
		{"two keys", map[string]json.RawMessage{"signed_curve25519:AAAAAQ": genuine, "signed_curve25519:AAAAAg": genuine}, ErrMalformedDeviceKeys},
		{"no signed key", map[string]json.RawMessage{"curve25519:AAAAAQ": genuine}, ErrMalformedDeviceKeys},
		{"not an object", map[string]json.RawMessage{"signed_curve25519:AAAAAQ": json.RawMessage(`7`)}, ErrMalformedDeviceKeys},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := claimedKey(dev, c.keys); !errors.Is(err, c.reason) {
				t.Fatalf("claimedKey: %v, want %v", err, c.reason)
			}
			claim, err := alice.GetMissingSessions(ctx, []string{"@bob:example.org"})
			if err != nil {
				t.Fatal(err)
			}
			before := storeDump(t, alice.path, "outgoing_requests")
			resp, _ := json.Marshal(keysClaimResponse{OneTimeKeys: map[string]map[string]map[string]json.RawMessage{
				"@bob:example.org":   {"BOB": c.keys, "UNKNOWN": {"signed_curve25519:AAAAAQ": genuine}},
				"@carol:example.org": {"CAROL": {"signed_curve25519:AAAAAQ": genuine}},
			}})
			if err := alice.MarkRequestAsSent(ctx, claim.ID, RequestKeysClaim, resp); err != nil {
				t.Fatal(err)
			}
			if after := storeDump(t, alice.path, "outgoing_requests"); after != before {
				t.Fatalf("a refused key changed the store:\n%s\nwant:\n%s", after, before)
			}
			if n := len(keysSessions(t, alice.Machine, bob.IdentityKeys().Curve25519.String())); n != 0 {
				t.Fatalf("%d sessions", n)
			}
		})
	}
	claim, _ := alice.GetMissingSessions(ctx, []string{"@bob:example.org"})
	before := storeDump(t, alice.path)
	if err := alice.MarkRequestAsSent(ctx, claim.ID, RequestKeysClaim, json.RawMessage(`{"one_time_keys":[]}`)); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("malformed claim response: %v", err)
	}
	if storeDump(t, alice.path) != before {
		t.Fatal("a malformed claim response changed the store")
	}
}

// queueClaimFor asks for a fresh session even with a device that has one,
// and does not queue a second claim while one covers the device.
func TestQueueClaimForCoversPendingClaims(t *testing.T) {
	ctx := context.Background()
	s, alice, _ := keysPair(t)
	claim, _ := alice.GetMissingSessions(ctx, []string{"@bob:example.org"})
	if err := alice.MarkRequestAsSent(ctx, claim.ID, RequestKeysClaim, s.answer(alice, claim)); err != nil {
		t.Fatal(err)
	}
	devs := keysDevices(t, alice.Machine, "@bob:example.org")
	for range 2 {
		err := alice.store.Update(ctx, "unwedge", cryptostore.Normal, func(tx *cryptostore.Tx) error {
			return alice.queueClaimFor(tx, devs)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	pending := keysRequestsOf(t, alice.Machine, RequestKeysClaim)
	if len(pending) != 1 {
		t.Fatalf("%d claims pending", len(pending))
	}
	if err := alice.MarkRequestAsSent(ctx, pending[0].ID, RequestKeysClaim, s.answer(alice, pending[0])); err != nil {
		t.Fatal(err)
	}
	if n := len(keysSessions(t, alice.Machine, devs[0].Curve25519)); n != 2 {
		t.Fatalf("%d sessions after a second claim", n)
	}
}

// A claim for a device marked as wedged runs the unwedging hook in the same
// transaction: the new session carries an m.dummy, queued as a to-device
// request; a claim for a device not marked queues nothing.
func TestClaimRunsTheNewSessionHook(t *testing.T) {
	ctx := context.Background()
	s, alice, bob := keysPair(t)
	carol := newKeysDevice(t, "@carol:example.org", "CAROL")
	s.flush(carol)
	if err := alice.UpdateTrackedUsers(ctx, []string{"@carol:example.org"}); err != nil {
		t.Fatal(err)
	}
	s.flush(alice)
	err := alice.store.Update(ctx, "mark wedged", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		return tx.SetUnwedged(bob.IdentityKeys().Curve25519.String())
	})
	if err != nil {
		t.Fatal(err)
	}
	claim, err := alice.GetMissingSessions(ctx, []string{"@bob:example.org", "@carol:example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MarkRequestAsSent(ctx, claim.ID, RequestKeysClaim, s.answer(alice, claim)); err != nil {
		t.Fatal(err)
	}
	sends := keysRequestsOf(t, alice.Machine, RequestToDevice)
	if len(sends) != 1 || sends[0].EventType != EventRoomEncrypted {
		t.Fatalf("to-device requests after the claim: %v", sends)
	}
	var body toDeviceMessages
	json.Unmarshal(sends[0].Body, &body)
	if len(body.Messages) != 1 || body.Messages["@bob:example.org"]["BOB"] == nil {
		t.Fatalf("m.dummy sent to %s", sends[0].Body)
	}
}
