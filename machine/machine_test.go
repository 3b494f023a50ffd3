package machine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

var testStoreKey = &[32]byte{9, 9, 9}

// openStore opens a store file for one process role.
func openStore(t testing.TB, path, role string) *cryptostore.Store {
	t.Helper()
	s, err := cryptostore.Open(context.Background(), path, cryptostore.Options{Key: testStoreKey, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newMachine opens a machine on a fresh store.
func newMachine(t testing.TB, user, device string) *Machine {
	t.Helper()
	s := openStore(t, filepath.Join(t.TempDir(), "crypto.db"), "app")
	m, err := Open(context.Background(), s, user, device, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOpenCreatesAccountOnceAndChecksOwner(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crypto.db")
	a, err := Open(ctx, openStore(t, path, "app"), "@alice:example.org", "ALICE", Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A second process on the same store finds the same account.
	b, err := Open(ctx, openStore(t, path, "nse"), "@alice:example.org", "ALICE", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.IdentityKeys() != b.IdentityKeys() {
		t.Fatal("two processes see different identity keys")
	}
	if _, err := Open(ctx, openStore(t, path, "share"), "@alice:example.org", "OTHER", Options{}); !errors.Is(err, ErrWrongAccount) {
		t.Fatalf("other device: %v", err)
	}
}

// encryptToDevice produces an m.room.encrypted content that the peer's Olm
// session decrypts to a plaintext carrying the spec's required fields.
func TestEncryptToDeviceRoundTrip(t *testing.T) {
	ctx := context.Background()
	m := newMachine(t, "@alice:example.org", "ALICE")
	bob, _ := olm.NewAccount(rand.Reader)
	bob.GenerateOneTimeKeys(rand.Reader, 1)
	bobDev := &cryptostore.Device{UserID: "@bob:example.org", DeviceID: "BOB",
		Curve25519: bob.IdentityKeys().Curve25519.String(), Ed25519: bob.IdentityKeys().Ed25519.String()}
	var content json.RawMessage
	err := m.store.Update(ctx, "share", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		if _, err := m.encryptToDevice(tx, bobDev, EventDummy, json.RawMessage(`{}`)); !errors.Is(err, ErrNoOlmSession) {
			t.Errorf("without a session: %v", err)
		}
		rec, _ := tx.Account()
		sess, err := rec.Account.NewOutboundSession(m.rand, bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key)
		if err != nil {
			return err
		}
		now := time.Now()
		if err := tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: bobDev.Curve25519, Session: sess, CreatedAt: now, LastUsedAt: now}); err != nil {
			return err
		}
		content, err = m.encryptToDevice(tx, bobDev, EventDummy, json.RawMessage(`{}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var c olmContent
	if err := json.Unmarshal(content, &c); err != nil || c.Algorithm != OlmAlgorithm || c.SenderKey != m.ids.Curve25519.String() {
		t.Fatalf("content %s: %v", content, err)
	}
	ct := c.Ciphertext[bobDev.Curve25519]
	body, _ := b64.Decode(ct.Body)
	pre, err := olm.ParsePreKeyMessage(body)
	if err != nil || ct.Type != int(olm.MessageTypePreKey) {
		t.Fatalf("type %d: %v", ct.Type, err)
	}
	_, plaintext, err := bob.NewInboundSession(nil, pre)
	if err != nil {
		t.Fatal(err)
	}
	var p olmPlaintext
	json.Unmarshal(plaintext, &p)
	if p.Type != EventDummy || p.Sender != m.userID || p.Recipient != "@bob:example.org" ||
		p.RecipientKeys.Ed25519 != bobDev.Ed25519 || p.Keys.Ed25519 != m.ids.Ed25519.String() {
		t.Fatalf("plaintext %s", plaintext)
	}
}

func TestQueuedRequestsSurviveRestartWithStableIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crypto.db")
	m, _ := Open(ctx, openStore(t, path, "app"), "@a:x", "A", Options{})
	var queued *Request
	m.store.Update(ctx, "queue", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		var err error
		queued, err = m.queueToDevice(tx, EventDummy, map[string]map[string]json.RawMessage{"@b:x": {"B": json.RawMessage(`{}`)}})
		return err
	})
	other := openStore(t, path, "nse")
	other.View(ctx, "list", func(tx *cryptostore.Tx) error {
		reqs, _ := tx.OutgoingRequests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests", len(reqs))
		}
		r, err := loadRequest(reqs[0])
		if err != nil || r.ID != queued.ID || r.EventType != EventDummy || string(r.Body) != string(queued.Body) {
			t.Fatalf("reloaded %+v: %v", r, err)
		}
		return nil
	})
}
