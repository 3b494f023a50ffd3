package machine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/olm"
)

// keysPair is alice and bob on one test server, their keys uploaded, alice
// tracking bob with his devices queried.
func keysPair(t testing.TB) (s *keysServer, alice, bob *keysDevice) {
	t.Helper()
	s = newKeysServer(t)
	alice = newKeysDevice(t, "@alice:example.org", "ALICE")
	bob = newKeysDevice(t, "@bob:example.org", "BOB")
	s.flush(alice)
	s.flush(bob)
	if err := alice.UpdateTrackedUsers(t.Context(), []string{"@bob:example.org"}); err != nil {
		t.Fatal(err)
	}
	if n := s.flush(alice); n != 1 {
		t.Fatalf("%d requests sent after tracking bob, want one query", n)
	}
	return s, alice, bob
}

// keysDevices returns the stored devices of user.
func keysDevices(t testing.TB, m *Machine, user string) []*cryptostore.Device {
	t.Helper()
	var out []*cryptostore.Device
	err := m.store.View(t.Context(), "test devices", func(tx *cryptostore.Tx) error {
		var err error
		out, err = tx.Devices(user)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keysSign returns dk signed by acct as user's device.
func keysSign(t testing.TB, user, device string, acct *olm.Account, dk any) json.RawMessage {
	t.Helper()
	signer := &Machine{userID: user, deviceID: device}
	raw, err := signer.signKeysJSON(acct, dk)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestKeysQueryStoresVerifiedDevices(t *testing.T) {
	s, alice, bob := keysPair(t)
	devs := keysDevices(t, alice.Machine, "@bob:example.org")
	if len(devs) != 1 || devs[0].DeviceID != "BOB" || devs[0].Curve25519 != bob.IdentityKeys().Curve25519.String() ||
		devs[0].Ed25519 != bob.IdentityKeys().Ed25519.String() || string(devs[0].KeysJSON) != string(s.devices["@bob:example.org"]["BOB"]) {
		t.Fatalf("stored devices %+v", devs)
	}
	if dirty := keysDirty(t, alice.Machine); len(dirty) != 0 {
		t.Fatalf("dirty after the query: %v", dirty)
	}
	// The same keys again are not rewritten.
	before := storeDump(t, alice.path, "outgoing_requests", "tracked_users")
	s.receiveSync(alice, []string{"@bob:example.org"}, nil)
	if n := s.flush(alice); n != 1 {
		t.Fatalf("%d requests after a device list change", n)
	}
	if after := storeDump(t, alice.path, "outgoing_requests", "tracked_users"); after != before {
		t.Fatalf("unchanged keys rewrote the store:\n%s\nwant:\n%s", after, before)
	}
}

func keysDirty(t testing.TB, m *Machine) []string {
	t.Helper()
	var out []string
	err := m.store.View(t.Context(), "test dirty", func(tx *cryptostore.Tx) error {
		var err error
		out, err = tx.TrackedUsers(true)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Devices whose keys fail verification are refused with a typed reason and
// leave the stored devices as they were, whether they are new or known.
func TestKeysQueryRefusesBadDevices(t *testing.T) {
	impostor, _ := olm.NewAccount(rand.Reader)
	impostorKeys := func(user, device string) deviceKeysJSON {
		return deviceKeysJSON{UserID: user, DeviceID: device, Algorithms: []string{OlmAlgorithm},
			Keys: map[string]string{"curve25519:" + device: impostor.IdentityKeys().Curve25519.String(),
				"ed25519:" + device: impostor.IdentityKeys().Ed25519.String()}}
	}
	const bobID = "@bob:example.org"
	cases := []struct {
		name   string
		user   string // whose devices are listed: bob, or alice herself
		reason error
		// edit changes the devices listed for user; known is the device's
		// genuine keys (BOB's, or ALICE's for alice).
		edit func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage)
	}{
		{"bad signature", bobID, ErrBadKeySignature, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			var obj map[string]any
			json.Unmarshal(known, &obj)
			obj["keys"].(map[string]any)["curve25519:BOB"] = impostor.IdentityKeys().Curve25519.String()
			listed["BOB"], _ = json.Marshal(obj)
		}},
		{"new device signed by another key", bobID, ErrBadKeySignature, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			signed := keysSign(t, bobID, "NEW", impostor, impostorKeys(bobID, "NEW"))
			listed["NEW"] = json.RawMessage(strings.Replace(string(signed), impostor.IdentityKeys().Ed25519.String(),
				keysOtherEd25519(t), 1))
		}},
		{"listed under another device", bobID, ErrDeviceKeysMismatch, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			listed["OTHER"] = known
		}},
		{"ed25519 key changed", bobID, ErrDeviceKeyChanged, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			listed["BOB"] = keysSign(t, bobID, "BOB", impostor, impostorKeys(bobID, "BOB"))
		}},
		{"not an object", bobID, ErrMalformedDeviceKeys, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			listed["NEW"] = json.RawMessage(`"keys"`)
		}},
		{"key not 32 bytes", bobID, ErrMalformedDeviceKeys, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			dk := impostorKeys(bobID, "NEW")
			dk.Keys["curve25519:NEW"] = "AAAA"
			listed["NEW"] = keysSign(t, bobID, "NEW", impostor, dk)
		}},
		{"too large", bobID, ErrMalformedDeviceKeys, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			dk := impostorKeys(bobID, "NEW")
			dk.Algorithms = append(dk.Algorithms, strings.Repeat("x", MaxDeviceKeysSize))
			listed["NEW"] = keysSign(t, bobID, "NEW", impostor, dk)
		}},
		{"too many devices", bobID, ErrTooManyDevices, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			for i := range MaxDevicesPerUser {
				listed[fmt.Sprintf("D%d", i)] = known
			}
		}},
		{"this device with other keys", "@alice:example.org", ErrDeviceKeyChanged, func(t *testing.T, known json.RawMessage, listed map[string]json.RawMessage) {
			listed["ALICE"] = keysSign(t, "@alice:example.org", "ALICE", impostor, impostorKeys("@alice:example.org", "ALICE"))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, alice, _ := keysPair(t)
			if err := alice.UpdateTrackedUsers(t.Context(), []string{c.user}); err != nil {
				t.Fatal(err)
			}
			s.flush(alice)
			known := s.devices[c.user]["BOB"]
			if c.user != bobID {
				known = s.devices[c.user]["ALICE"]
			}
			s.rewrite = func(resp map[string]map[string]json.RawMessage) {
				if resp[c.user] != nil {
					c.edit(t, known, resp[c.user])
				}
			}
			// The typed reason, from the step that stores a user's devices.
			listed := maps.Clone(s.devices[c.user])
			c.edit(t, known, listed)
			rollBack := errors.New("roll back")
			err := alice.store.Update(t.Context(), "test", cryptostore.Normal, func(tx *cryptostore.Tx) error {
				rejected, err := alice.storeUserDevices(tx, c.user, listed)
				if err != nil {
					return err
				}
				var de *DeviceKeysError
				if len(rejected) != 1 || !errors.As(rejected[0], &de) || !errors.Is(rejected[0], c.reason) || de.UserID != c.user {
					t.Errorf("rejected %v, want one %v", rejected, c.reason)
				}
				return rollBack
			})
			if !errors.Is(err, rollBack) {
				t.Fatal(err)
			}
			// Through the whole round trip the stored devices stay as they were.
			before := storeDump(t, alice.path, "outgoing_requests", "tracked_users")
			s.receiveSync(alice, []string{c.user}, nil)
			if n := s.flush(alice); n != 1 {
				t.Fatalf("%d requests", n)
			}
			if after := storeDump(t, alice.path, "outgoing_requests", "tracked_users"); after != before {
				t.Fatalf("refused keys changed the store:\n%s\nwant:\n%s", after, before)
			}
		})
	}
}

func keysOtherEd25519(t testing.TB) string {
	t.Helper()
	a, err := olm.NewAccount(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return a.IdentityKeys().Ed25519.String()
}

// A device no longer listed is archived; a device whose Curve25519 key
// changed under the same Ed25519 key is updated (the old keys archived).
func TestKeysQueryRemovesAndUpdatesDevices(t *testing.T) {
	s, alice, bob := keysPair(t)
	bobAcct := keysAccount(t, bob.Machine).Account
	newCurve, _ := olm.NewAccount(rand.Reader)
	dk := bob.ownDeviceKeys()
	dk.Keys["curve25519:BOB"] = newCurve.IdentityKeys().Curve25519.String()
	second := newKeysDevice(t, "@bob:example.org", "BOB2")
	s.flush(second)
	s.devices["@bob:example.org"]["BOB"] = keysSign(t, "@bob:example.org", "BOB", bobAcct, dk)
	s.receiveSync(alice, []string{"@bob:example.org"}, nil)
	s.flush(alice)
	devs := keysDevices(t, alice.Machine, "@bob:example.org")
	if len(devs) != 2 || devs[0].Curve25519 != newCurve.IdentityKeys().Curve25519.String() || devs[1].DeviceID != "BOB2" {
		t.Fatalf("devices %+v", devs)
	}
	delete(s.devices["@bob:example.org"], "BOB2")
	s.receiveSync(alice, []string{"@bob:example.org"}, nil)
	s.flush(alice)
	if devs := keysDevices(t, alice.Machine, "@bob:example.org"); len(devs) != 1 || devs[0].DeviceID != "BOB" {
		t.Fatalf("devices after BOB2 left %+v", devs)
	}
	if dump := storeDump(t, alice.path); strings.Count(dump, "archived_devices ") != 2 {
		t.Fatalf("archived devices:\n%s", dump)
	}
}

// A response that is not of /keys/query's shape is refused whole: the store
// is unchanged and the request stays pending.
func TestKeysQueryMalformedResponse(t *testing.T) {
	ctx := context.Background()
	s, alice, _ := keysPair(t)
	s.receiveSync(alice, []string{"@bob:example.org"}, nil)
	qs := keysRequestsOf(t, alice.Machine, RequestKeysQuery)
	before := storeDump(t, alice.path)
	for _, resp := range []string{`{"device_keys":{"@bob:example.org":"x"}}`, `{"device_keys":[]}`, `x`} {
		if err := alice.MarkRequestAsSent(ctx, qs[0].ID, RequestKeysQuery, json.RawMessage(resp)); !errors.Is(err, ErrMalformedResponse) {
			t.Fatalf("%s: %v", resp, err)
		}
	}
	if storeDump(t, alice.path) != before {
		t.Fatal("a malformed response changed the store")
	}
	if again := keysRequestsOf(t, alice.Machine, RequestKeysQuery); len(again) != 1 || again[0].ID != qs[0].ID {
		t.Fatal("the query is no longer pending")
	}
}
