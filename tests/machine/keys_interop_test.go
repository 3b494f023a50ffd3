package machine_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/olm"
)

const (
	keysAlice       = "@alice:example.org" // xolm
	keysAliceDevice = "ALICE"
	keysBob         = "@bob:example.org" // matrix-rust-sdk
	keysBobDevice   = "BOBDEVICE"
)

// keysIdentity is a device's identity keys as rustsdk.mjs reports them.
type keysIdentity struct {
	Curve25519 string `json:"curve25519"`
	Ed25519    string `json:"ed25519"`
}

// keysSetup starts both devices and has each upload its keys.
func keysSetup(t *testing.T) (*keysHomeserver, *keysXolm, *keysRust) {
	t.Helper()
	hs := newKeysHomeserver(t)
	alice := newKeysXolm(t, keysAlice, keysAliceDevice)
	hs.Flush(alice.Machine)
	bob := newKeysRust(t, nodepeer.Start(t, "rustsdk.mjs"), keysBob, keysBobDevice)
	hs.flushRust(bob)
	otks, fallback := hs.OneTimeKeyCounts(keysAlice, keysAliceDevice)["signed_curve25519"], hs.FallbackKeys(keysAlice, keysAliceDevice)
	if otks != machine.TargetOneTimeKeys || fallback != 1 {
		t.Fatalf("xolm uploaded %d one-time and %d fallback keys", otks, fallback)
	}
	return hs, alice, bob
}

// matrix-rust-sdk queries xolm's uploaded device keys and accepts them (it
// drops devices whose self-signature does not verify), claims one of xolm's
// one-time keys (it checks the key's signature before making a session), and
// its first message opens a session with xolm's account from that key.
func TestKeysInteropRustQueriesAndClaimsXolm(t *testing.T) {
	ctx := context.Background()
	hs, alice, bob := keysSetup(t)
	bob.peer.MustCall("machine.update_tracked_users", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, nil)
	hs.flushRust(bob)
	var dev *struct {
		Curve25519 string `json:"curve25519"`
		Ed25519    string `json:"ed25519"`
	}
	bob.peer.MustCall("machine.get_device", map[string]any{"machine": bob.handle, "user_id": keysAlice, "device_id": keysAliceDevice}, &dev)
	if dev == nil || dev.Curve25519 != alice.IdentityKeys().Curve25519.String() || dev.Ed25519 != alice.IdentityKeys().Ed25519.String() {
		t.Fatalf("matrix-rust-sdk's view of xolm's device: %+v", dev)
	}

	var claim *keysRustRequest
	bob.peer.MustCall("machine.get_missing_sessions", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, &claim)
	if claim == nil || claim.Type != "KeysClaim" {
		t.Fatalf("claim %+v", claim)
	}
	hs.markRust(bob, *claim)
	if len(hs.Claimed()) != 1 {
		t.Fatalf("%d keys claimed", len(hs.Claimed()))
	}
	var claimed struct {
		Key string `json:"key"`
	}
	json.Unmarshal(hs.Claimed()[0], &claimed)

	var content struct {
		SenderKey  string `json:"sender_key"`
		Ciphertext map[string]struct {
			Type int    `json:"type"`
			Body string `json:"body"`
		} `json:"ciphertext"`
	}
	bob.peer.MustCall("machine.encrypt_to_device", map[string]any{"machine": bob.handle, "user_id": keysAlice,
		"device_id": keysAliceDevice, "type": "org.example.keys_test", "content": map[string]int{"n": 1}}, &content)
	ct, ok := content.Ciphertext[alice.IdentityKeys().Curve25519.String()]
	if !ok || ct.Type != int(olm.MessageTypePreKey) {
		t.Fatalf("ciphertext %+v", content)
	}
	raw, _ := b64.Decode(ct.Body)
	pre, err := olm.ParsePreKeyMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if pre.OneTimeKey().String() != claimed.Key {
		t.Fatalf("the session uses key %s, the claimed key is %s", pre.OneTimeKey(), claimed.Key)
	}
	// Open it with xolm's stored account (decrypting to-device events is
	// the sync step's job; here only the keys are under test).
	rollBack := errors.New("roll back")
	err = alice.store.Update(ctx, "test open session", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		_, plaintext, err := rec.Account.NewInboundSession(nil, pre)
		if err != nil {
			return err
		}
		var p struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(plaintext, &p); p.Type != "org.example.keys_test" {
			t.Errorf("plaintext %s", plaintext)
		}
		return rollBack
	})
	if !errors.Is(err, rollBack) {
		t.Fatalf("xolm cannot open matrix-rust-sdk's session: %v", err)
	}
}

// xolm queries matrix-rust-sdk's device keys, claims its one-time key and
// creates a session whose first message matrix-rust-sdk decrypts.
func TestKeysInteropXolmQueriesAndClaimsRust(t *testing.T) {
	ctx := context.Background()
	hs, alice, bob := keysSetup(t)
	var bobKeys keysIdentity
	bob.peer.MustCall("machine.identity_keys", map[string]any{"machine": bob.handle}, &bobKeys)

	if err := alice.UpdateTrackedUsers(ctx, []string{keysBob}); err != nil {
		t.Fatal(err)
	}
	hs.Flush(alice.Machine)
	var devs []*cryptostore.Device
	alice.store.View(ctx, "devices", func(tx *cryptostore.Tx) error {
		devs, _ = tx.Devices(keysBob)
		return nil
	})
	if len(devs) != 1 || devs[0].DeviceID != keysBobDevice || devs[0].Curve25519 != bobKeys.Curve25519 || devs[0].Ed25519 != bobKeys.Ed25519 {
		t.Fatalf("xolm's view of matrix-rust-sdk's device: %+v", devs)
	}

	claim, err := alice.GetMissingSessions(ctx, []string{keysBob})
	if err != nil || claim == nil {
		t.Fatalf("claim %v: %v", claim, err)
	}
	reqs, _ := alice.OutgoingRequests(ctx)
	if !slices.ContainsFunc(reqs, func(r *machine.Request) bool { return r.ID == claim.ID }) {
		t.Fatal("the claim is not among the outgoing requests")
	}
	resp := hs.Answer(keysAlice, keysAliceDevice, claim.ID, claim.Type, "", claim.Body)
	if err := alice.MarkRequestAsSent(ctx, claim.ID, claim.Type, resp); err != nil {
		t.Fatal(err)
	}
	if again, _ := alice.GetMissingSessions(ctx, []string{keysBob}); again != nil {
		t.Fatal("a session is still missing after the claim")
	}

	// matrix-rust-sdk must know xolm's device to accept its messages.
	bob.peer.MustCall("machine.update_tracked_users", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, nil)
	hs.flushRust(bob)
	event := keysEncryptWithStoredSession(t, alice, devs[0], "org.example.keys_test", `{"n":2}`)
	hs.Deliver(keysBob, keysBobDevice, event)
	processed := hs.syncRust(bob, nil)
	if len(processed) != 1 || processed[0].Type != "Decrypted" || processed[0].Event.Type != "org.example.keys_test" ||
		processed[0].EncryptionInfo == nil || processed[0].EncryptionInfo.SenderCurve25519Key != alice.IdentityKeys().Curve25519.String() {
		t.Fatalf("matrix-rust-sdk made of xolm's message: %+v", processed)
	}
}

// keysEncryptWithStoredSession encrypts a to-device event for dev with the
// Olm session the claim stored, through the store's public API, and returns
// the m.room.encrypted to-device event.
func keysEncryptWithStoredSession(t *testing.T, x *keysXolm, dev *cryptostore.Device, eventType, content string) json.RawMessage {
	t.Helper()
	var event json.RawMessage
	err := x.store.Update(context.Background(), "test encrypt", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(dev.Curve25519)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%d sessions with the device: %v", len(recs), err)
		}
		plaintext, _ := json.Marshal(map[string]any{
			"type": eventType, "content": json.RawMessage(content),
			"sender": x.UserID(), "recipient": dev.UserID,
			"recipient_keys": map[string]string{"ed25519": dev.Ed25519},
			"keys":           map[string]string{"ed25519": x.IdentityKeys().Ed25519.String()},
		})
		typ, body, err := recs[0].Session.Encrypt(rand.Reader, plaintext)
		if err != nil {
			return err
		}
		recs[0].LastUsedAt = time.Now()
		if err := tx.PutOlmSession(recs[0]); err != nil {
			return err
		}
		event, err = json.Marshal(map[string]any{
			"type": "m.room.encrypted", "sender": x.UserID(),
			"content": map[string]any{
				"algorithm":  machine.OlmAlgorithm,
				"sender_key": x.IdentityKeys().Curve25519.String(),
				"ciphertext": map[string]any{dev.Curve25519: map[string]any{"type": int(typ), "body": b64.Encode(body)}},
			},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return event
}

// The acceptance above means something: matrix-rust-sdk refuses xolm's
// device keys once a key in them is changed under the signature.
func TestKeysInteropRustRefusesTamperedDeviceKeys(t *testing.T) {
	hs, alice, bob := keysSetup(t)
	var obj map[string]any
	json.Unmarshal(hs.DeviceKeys(keysAlice, keysAliceDevice), &obj)
	other, _ := olm.NewAccount(rand.Reader)
	obj["keys"].(map[string]any)["curve25519:"+keysAliceDevice] = other.IdentityKeys().Curve25519.String()
	tampered, _ := json.Marshal(obj)
	hs.SetDeviceKeys(keysAlice, keysAliceDevice, tampered)
	bob.peer.MustCall("machine.update_tracked_users", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, nil)
	hs.flushRust(bob)
	var dev *keysIdentity
	bob.peer.MustCall("machine.get_device", map[string]any{"machine": bob.handle, "user_id": keysAlice, "device_id": keysAliceDevice}, &dev)
	if dev != nil {
		t.Fatalf("matrix-rust-sdk accepted tampered keys: %+v (xolm's curve25519 is %s)", dev, alice.IdentityKeys().Curve25519)
	}
}
