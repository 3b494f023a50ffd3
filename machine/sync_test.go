package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/canonicaljson"
	"github.com/xolm/xolm/olm"
)

// stepClock is one clock for a test's machines and their stores, so that
// times the store stamps and times the machine compares agree.
type stepClock struct {
	mu    sync.Mutex
	t     time.Time
	onNow func() // called on every reading, if set
}

func newStepClock() *stepClock {
	return &stepClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the time and moves it on by a millisecond, so that
// successive steps are ordered as in real time.
func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	f := c.onNow
	now := c.t
	c.t = c.t.Add(time.Millisecond)
	c.mu.Unlock()
	if f != nil {
		f()
	}
	return now
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tdPeer is one device's machine over its own store file.
type tdPeer struct {
	*Machine
	path     string
	clock    *stepClock
	keysJSON json.RawMessage // signed device keys, as /keys/query returns them
}

func newTDPeer(t testing.TB, user, device string, clock *stepClock) *tdPeer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crypto.db")
	return openTDPeer(t, path, "app", user, device, clock)
}

// openTDPeer opens a machine over the store file at path, as the process role
// would.
func openTDPeer(t testing.TB, path, role, user, device string, clock *stepClock) *tdPeer {
	t.Helper()
	s, err := cryptostore.Open(context.Background(), path, cryptostore.Options{Key: testStoreKey, Role: role, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := Open(context.Background(), s, user, device, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := &tdPeer{Machine: m, path: path, clock: clock}
	p.keysJSON = p.signedDeviceKeys(t)
	return p
}

// signedDeviceKeys returns the peer's device keys signed by its account.
func (p *tdPeer) signedDeviceKeys(t testing.TB) json.RawMessage {
	t.Helper()
	obj, _ := json.Marshal(map[string]any{
		"user_id": p.userID, "device_id": p.deviceID, "algorithms": []string{OlmAlgorithm, MegolmAlgorithm},
		"keys": map[string]string{"curve25519:" + p.deviceID: p.ids.Curve25519.String(), "ed25519:" + p.deviceID: p.ids.Ed25519.String()},
	})
	return p.sign(t, obj)
}

// sign signs a JSON object with the peer's account, as Matrix signs JSON.
func (p *tdPeer) sign(t testing.TB, obj json.RawMessage) json.RawMessage {
	t.Helper()
	canon, err := canonicaljson.Canonicalize(obj)
	if err != nil {
		t.Fatal(err)
	}
	var sig string
	p.store.View(context.Background(), "sign", func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		sig = b64.Encode(rec.Account.Sign(canon))
		return nil
	})
	var m map[string]json.RawMessage
	json.Unmarshal(obj, &m)
	m["signatures"], _ = json.Marshal(map[string]map[string]string{p.userID: {"ed25519:" + p.deviceID: sig}})
	out, _ := json.Marshal(m)
	return out
}

func (p *tdPeer) update(t testing.TB, fn func(tx *cryptostore.Tx) error) {
	t.Helper()
	if err := p.store.Update(context.Background(), "test", cryptostore.Synced, fn); err != nil {
		t.Fatal(err)
	}
}

// device is the peer's own device as others store it after a key query.
func (p *tdPeer) device() *cryptostore.Device {
	return &cryptostore.Device{UserID: p.userID, DeviceID: p.deviceID,
		Curve25519: p.ids.Curve25519.String(), Ed25519: p.ids.Ed25519.String(), KeysJSON: p.keysJSON}
}

// introducePeers stores each peer's device in the other's store, as a key query
// would.
func introducePeers(t testing.TB, a, b *tdPeer) {
	t.Helper()
	a.update(t, func(tx *cryptostore.Tx) error { return tx.PutDevice(b.device()) })
	b.update(t, func(tx *cryptostore.Tx) error { return tx.PutDevice(a.device()) })
}

// oneTimeKey generates and publishes one one-time key in p's store and
// returns it as /keys/claim returns it: key ID and signed key object.
func (p *tdPeer) oneTimeKey(t testing.TB) (string, json.RawMessage) {
	t.Helper()
	var id string
	var signed json.RawMessage
	p.update(t, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		before := len(rec.Account.OneTimeKeys())
		if err := rec.Account.GenerateOneTimeKeys(p.rand, 1); err != nil {
			return err
		}
		k := rec.Account.OneTimeKeys()[before]
		rec.Account.MarkKeysAsPublished()
		id = "signed_curve25519:" + k.ID.String()
		signed, _ = json.Marshal(map[string]string{"key": k.Key.String()})
		return tx.PutAccount(rec)
	})
	return id, p.sign(t, signed)
}

// connectedPeers returns Alice and Bob on one step clock, each knowing the
// other's device keys, with an outbound Olm session from Alice to Bob.
func connectedPeers(t testing.TB) (alice, bob *tdPeer, clock *stepClock) {
	clock = newStepClock()
	alice = newTDPeer(t, "@alice:example.org", "ALICE", clock)
	bob = newTDPeer(t, "@bob:example.org", "BOB", clock)
	introducePeers(t, alice, bob)
	olmConnect(t, alice, bob)
	return alice, bob, clock
}

// olmConnect creates an outbound Olm session from one peer to another with a
// fresh one-time key of the other, as a claim would.
func olmConnect(t testing.TB, from, to *tdPeer) {
	t.Helper()
	_, signed := to.oneTimeKey(t)
	var k struct{ Key string }
	json.Unmarshal(signed, &k)
	otk, _ := olm.ParseCurve25519PublicKey(k.Key)
	from.update(t, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		s, err := rec.Account.NewOutboundSession(from.rand, to.ids.Curve25519, otk)
		if err != nil {
			return err
		}
		now := from.now()
		return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: to.ids.Curve25519.String(), Session: s, CreatedAt: now, LastUsedAt: now})
	})
}

// olmSend encrypts a to-device event from one peer to another and returns it
// as the recipient's sync response carries it.
func olmSend(t testing.TB, from, to *tdPeer, eventType, content string) json.RawMessage {
	t.Helper()
	var enc json.RawMessage
	from.update(t, func(tx *cryptostore.Tx) error {
		var err error
		enc, err = from.encryptToDevice(tx, to.device(), eventType, json.RawMessage(content))
		return err
	})
	return toDeviceEvent(from.userID, EventRoomEncrypted, enc)
}

func toDeviceEvent(sender, eventType string, content json.RawMessage) json.RawMessage {
	ev, _ := json.Marshal(rawEvent{Type: eventType, Sender: sender, Content: content})
	return ev
}

// receive hands events to p in one batch.
func (p *tdPeer) receive(t testing.TB, events ...json.RawMessage) []ToDeviceResult {
	t.Helper()
	res, err := p.ReceiveSyncChanges(context.Background(), SyncChanges{ToDeviceEvents: events})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(events) {
		t.Fatalf("%d results for %d events", len(res), len(events))
	}
	return res
}

// wantDecrypted checks that a result is a decrypted event of the given type and
// content from the given peer.
func wantDecrypted(t testing.TB, r ToDeviceResult, from *tdPeer, eventType, content string) {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("not decrypted: %v", r.Err)
	}
	var ev decryptedToDevice
	if err := json.Unmarshal(r.Event, &ev); err != nil {
		t.Fatal(err)
	}
	if !r.Encrypted || r.Type != eventType || ev.Type != eventType || string(ev.Content) != content ||
		r.Sender != from.userID || ev.Sender != from.userID ||
		r.SenderKey != from.ids.Curve25519.String() || ev.SenderKey != r.SenderKey ||
		r.SenderEd25519 != from.ids.Ed25519.String() || ev.Keys.Ed25519 != r.SenderEd25519 {
		t.Fatalf("decrypted %+v: %s", r, r.Event)
	}
}

// A pre-key message creates the session and uses the one-time key up; the
// next pre-key messages of the same session use that session; once the
// sender has heard back, normal messages follow. Several messages from one
// sender in one batch each see the session as the previous one left it.
func TestReceivePreKeyThenNormalMessages(t *testing.T) {
	alice, bob, _ := connectedPeers(t)

	first, second := olmSend(t, alice, bob, "m.test", `{"n":1}`), olmSend(t, alice, bob, "m.test", `{"n":2}`)
	res := bob.receive(t, first, second)
	wantDecrypted(t, res[0], alice, "m.test", `{"n":1}`)
	wantDecrypted(t, res[1], alice, "m.test", `{"n":2}`)
	if res[0].SenderDevice != "ALICE" {
		t.Fatalf("sender device %q", res[0].SenderDevice)
	}
	bob.store.View(context.Background(), "check", func(tx *cryptostore.Tx) error {
		recs, _ := tx.OlmSessions(alice.ids.Curve25519.String())
		rec, _ := tx.Account()
		if len(recs) != 1 || len(rec.Account.AllOneTimeKeys()) != 0 {
			t.Errorf("%d sessions, %d one-time keys left", len(recs), len(rec.Account.AllOneTimeKeys()))
		}
		return nil
	})

	// Bob answers; from then on Alice sends normal messages, several per batch.
	wantDecrypted(t, alice.receive(t, olmSend(t, bob, alice, "m.test", `{"reply":true}`))[0], bob, "m.test", `{"reply":true}`)
	var batch []json.RawMessage
	for i := range 5 {
		ev := olmSend(t, alice, bob, "m.test", fmt.Sprintf(`{"n":%d}`, i+3))
		var c olmContent
		var e rawEvent
		json.Unmarshal(ev, &e)
		json.Unmarshal(e.Content, &c)
		if c.Ciphertext[bob.ids.Curve25519.String()].Type != int(olm.MessageTypeNormal) {
			t.Fatal("alice still sends pre-key messages after hearing back")
		}
		batch = append(batch, ev)
	}
	for i, r := range bob.receive(t, batch...) {
		wantDecrypted(t, r, alice, "m.test", fmt.Sprintf(`{"n":%d}`, i+3))
	}
}

// Invariant 7: a second copy of a decrypted message — in the same batch, in
// a later batch, or handed to another process on the same store — is a
// duplicate, never a wedged session.
func TestInvariant7DuplicatesAreHarmless(t *testing.T) {
	alice, bob, clock := connectedPeers(t)
	nse := openTDPeer(t, bob.path, "nse", bob.userID, bob.deviceID, clock)

	pre := olmSend(t, alice, bob, "m.test", `{"n":1}`)
	res := bob.receive(t, pre, pre)
	wantDecrypted(t, res[0], alice, "m.test", `{"n":1}`)
	if !errors.Is(res[1].Err, ErrDuplicateOlmMessage) || res[1].Event != nil {
		t.Fatalf("same batch: %+v", res[1])
	}
	for _, p := range []*tdPeer{bob, nse} {
		if r := p.receive(t, pre)[0]; !errors.Is(r.Err, ErrDuplicateOlmMessage) {
			t.Fatalf("again: %v", r.Err)
		}
	}
	// Both processes see the same batch: each event decrypts once.
	wantDecrypted(t, alice.receive(t, olmSend(t, bob, alice, "m.test", `{}`))[0], bob, "m.test", `{}`)
	batch := []json.RawMessage{olmSend(t, alice, bob, "m.test", `{"n":2}`), olmSend(t, alice, bob, "m.test", `{"n":3}`)}
	for i, r := range nse.receive(t, batch...) {
		wantDecrypted(t, r, alice, "m.test", fmt.Sprintf(`{"n":%d}`, i+2))
	}
	for _, r := range bob.receive(t, batch...) {
		if !errors.Is(r.Err, ErrDuplicateOlmMessage) {
			t.Fatalf("the app after the extension: %v", r.Err)
		}
	}
	// matrix-rust-sdk #3110: the app, then the extension, then the app each
	// decrypt the next message from the same session.
	for i, p := range []*tdPeer{bob, nse, bob, nse} {
		wantDecrypted(t, p.receive(t, olmSend(t, alice, bob, "m.test", fmt.Sprintf(`{"i":%d}`, i)))[0], alice, "m.test", fmt.Sprintf(`{"i":%d}`, i))
	}
	bob.store.View(context.Background(), "check", func(tx *cryptostore.Tx) error {
		if at, _ := tx.LastUnwedged(alice.ids.Curve25519.String()); !at.IsZero() {
			t.Error("a duplicate started unwedging")
		}
		if reqs, _ := tx.OutgoingRequests(); len(reqs) != 0 {
			t.Errorf("%d requests queued", len(reqs))
		}
		return nil
	})
}

// A batch whose transaction fails to commit changes nothing, and the same
// batch processed again decrypts as if the first attempt never happened.
func TestFailedCommitLeavesBatchUndone(t *testing.T) {
	alice, bob, clock := connectedPeers(t)
	batch := []json.RawMessage{olmSend(t, alice, bob, "m.test", `{"n":1}`), olmSend(t, alice, bob, "m.test", `{"n":2}`)}
	before := storeDump(t, bob.path)

	// The clock is read as each event is staged: cancel at the third
	// reading, with the first event staged and the second under way, so the
	// transaction does its work and then cannot commit.
	ctx, cancel := context.WithCancel(context.Background())
	readings := 0
	clock.mu.Lock()
	clock.onNow = func() {
		if readings++; readings == 3 {
			cancel()
		}
	}
	clock.mu.Unlock()
	res, err := bob.ReceiveSyncChanges(ctx, SyncChanges{ToDeviceEvents: batch})
	clock.mu.Lock()
	clock.onNow = nil
	clock.mu.Unlock()
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("cancelled batch: %v, %d results", err, len(res))
	}
	if after := storeDump(t, bob.path); before != after {
		t.Fatal("a batch that did not commit changed the store")
	}
	for i, r := range bob.receive(t, batch...) {
		wantDecrypted(t, r, alice, "m.test", fmt.Sprintf(`{"n":%d}`, i+1))
	}
}

// Events past the batch limit are reported, not processed.
func TestBatchLimit(t *testing.T) {
	bob := newTDPeer(t, "@bob:example.org", "BOB", newStepClock())
	events := make([]json.RawMessage, MaxToDeviceEventsPerBatch+2)
	for i := range events {
		events[i] = toDeviceEvent("@alice:example.org", "m.test", json.RawMessage(`{}`))
	}
	res := bob.receive(t, events...)
	if res[0].Err != nil || string(res[0].Event) != string(events[0]) || res[0].Encrypted {
		t.Fatalf("cleartext event: %+v", res[0])
	}
	var limit *ToDeviceBatchLimitError
	if !errors.As(res[MaxToDeviceEventsPerBatch].Err, &limit) || limit.Index != MaxToDeviceEventsPerBatch ||
		!errors.Is(res[MaxToDeviceEventsPerBatch+1].Err, ErrToDeviceBatchLimit) {
		t.Fatalf("past the limit: %v", res[MaxToDeviceEventsPerBatch].Err)
	}
}
