package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// roomPeer is a machine on its own store file, with a clock the test moves.
type roomPeer struct {
	m     *Machine
	path  string
	clock time.Time
}

func newRoomPeer(t testing.TB, user, device string) *roomPeer {
	t.Helper()
	p := &roomPeer{path: filepath.Join(t.TempDir(), "crypto.db"), clock: time.Unix(1_700_000_000, 0)}
	m, err := Open(context.Background(), openStore(t, p.path, "app"), user, device, Options{Now: func() time.Time { return p.clock }})
	if err != nil {
		t.Fatal(err)
	}
	p.m = m
	return p
}

// device is the peer's device as a key query would report it.
func (p *roomPeer) device() *cryptostore.Device {
	return &cryptostore.Device{UserID: p.m.userID, DeviceID: p.m.deviceID,
		Curve25519: p.m.ids.Curve25519.String(), Ed25519: p.m.ids.Ed25519.String(), KeysJSON: []byte(`{}`)}
}

func (p *roomPeer) update(t testing.TB, fn func(tx *cryptostore.Tx) error) {
	t.Helper()
	if err := p.m.store.Update(context.Background(), "test", cryptostore.Normal, fn); err != nil {
		t.Fatal(err)
	}
}

// roomConnect makes each peer know the other's device and gives from an
// outbound Olm session to to, as a key query and a claim would.
func roomConnect(t testing.TB, from, to *roomPeer) {
	t.Helper()
	var otk olm.Curve25519PublicKey
	to.update(t, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		if err := rec.Account.GenerateOneTimeKeys(to.m.rand, 1); err != nil {
			return err
		}
		keys := rec.Account.OneTimeKeys()
		otk = keys[len(keys)-1].Key
		if err := tx.PutDevice(from.device()); err != nil {
			return err
		}
		return tx.PutAccount(rec)
	})
	from.update(t, func(tx *cryptostore.Tx) error {
		if err := tx.PutDevice(to.device()); err != nil {
			return err
		}
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		sess, err := rec.Account.NewOutboundSession(from.m.rand, to.m.ids.Curve25519, otk)
		if err != nil {
			return err
		}
		return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: to.device().Curve25519,
			Session: sess, CreatedAt: from.clock, LastUsedAt: from.clock})
	})
}

// roomKeysFor returns the m.room_key contents in requests addressed to p,
// decrypted with p's Olm sessions (created from a pre-key message when
// needed), which are stored.
func roomKeysFor(t testing.TB, p *roomPeer, requests []*Request) []roomKeyContent {
	t.Helper()
	var out []roomKeyContent
	for _, r := range requests {
		if r.Type != RequestToDevice || r.EventType != EventRoomEncrypted {
			t.Fatalf("request %+v", r)
		}
		var body toDeviceMessages
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		raw, ok := body.Messages[p.m.userID][p.m.deviceID]
		if !ok {
			continue
		}
		var c olmContent
		if err := json.Unmarshal(raw, &c); err != nil || c.Algorithm != OlmAlgorithm {
			t.Fatalf("content %s: %v", raw, err)
		}
		plaintext := roomOlmDecrypt(t, p, c)
		var pt olmPlaintext
		if err := json.Unmarshal(plaintext, &pt); err != nil || pt.Type != EventRoomKey || pt.Recipient != p.m.userID ||
			pt.RecipientKeys.Ed25519 != p.m.ids.Ed25519.String() {
			t.Fatalf("plaintext %s: %v", plaintext, err)
		}
		var k roomKeyContent
		if err := json.Unmarshal(pt.Content, &k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

func roomOlmDecrypt(t testing.TB, p *roomPeer, c olmContent) []byte {
	t.Helper()
	ct, ok := c.Ciphertext[p.m.ids.Curve25519.String()]
	if !ok {
		t.Fatal("no ciphertext for this device")
	}
	body, err := b64.Decode(ct.Body)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := olm.ParseCurve25519PublicKey(c.SenderKey)
	if err != nil {
		t.Fatal(err)
	}
	var plaintext []byte
	p.update(t, func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(c.SenderKey)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if plaintext, err = rec.Session.Decrypt(olm.MessageType(ct.Type), body); err == nil {
				return tx.PutOlmSession(rec)
			}
		}
		if ct.Type != int(olm.MessageTypePreKey) {
			return errors.New("no session decrypts")
		}
		pre, err := olm.ParsePreKeyMessage(body)
		if err != nil {
			return err
		}
		acct, err := tx.Account()
		if err != nil {
			return err
		}
		sess, pt, err := acct.Account.NewInboundSession(&sender, pre)
		if err != nil {
			return err
		}
		plaintext = pt
		return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: c.SenderKey, Session: sess, CreatedAt: p.clock, LastUsedAt: p.clock})
	})
	return plaintext
}

// receiveRoomKeys stores the room keys in requests for p, as the to-device
// path does with an m.room_key from sender.
func receiveRoomKeys(t testing.TB, p, sender *roomPeer, requests []*Request) []roomKeyContent {
	t.Helper()
	keys := roomKeysFor(t, p, requests)
	for _, k := range keys {
		raw, err := b64.Decode(k.SessionKey)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := megolm.NewInboundGroupSession(raw)
		if err != nil || sess.ID() != k.SessionID {
			t.Fatalf("session key: %v", err)
		}
		p.update(t, func(tx *cryptostore.Tx) error {
			_, err := tx.PutInboundGroupSession(&cryptostore.InboundGroupSessionRecord{RoomID: k.RoomID,
				SenderKey: sender.m.ids.Curve25519.String(), SigningKey: sender.m.ids.Ed25519.String(),
				Session: sess, ImportedAt: p.clock})
			return err
		})
	}
	return keys
}

// markSent reports requests as sent, as the keys area's MarkRequestAsSent
// does for ToDevice requests.
func markSent(t testing.TB, p *roomPeer, requests []*Request) {
	t.Helper()
	p.update(t, func(tx *cryptostore.Tx) error {
		for _, r := range requests {
			if _, err := tx.RemoveOutgoingRequest(r.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// share runs ShareRoomKey and marks its requests sent.
func share(t testing.TB, p *roomPeer, room string, users []string, s EncryptionSettings) []*Request {
	t.Helper()
	reqs, err := p.m.ShareRoomKey(context.Background(), room, users, s)
	if err != nil {
		t.Fatal(err)
	}
	markSent(t, p, reqs)
	return reqs
}

func outboundSession(t testing.TB, p *roomPeer, room string) *cryptostore.OutboundGroupSessionRecord {
	t.Helper()
	var rec *cryptostore.OutboundGroupSessionRecord
	p.update(t, func(tx *cryptostore.Tx) error {
		var err error
		rec, err = tx.OutboundGroupSession(room)
		return err
	})
	return rec
}

const testRoom = "!room:example.org"

func TestShareRoomKeyOncePerDevice(t *testing.T) {
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	bob := newRoomPeer(t, "@bob:example.org", "BOB")
	roomConnect(t, alice, bob)
	users := []string{"@bob:example.org", "@alice:example.org", "@bob:example.org"}
	reqs := share(t, alice, testRoom, users, EncryptionSettings{})
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	keys := receiveRoomKeys(t, bob, alice, reqs)
	out := outboundSession(t, alice, testRoom)
	if len(keys) != 1 || keys[0].RoomID != testRoom || keys[0].SessionID != out.Session.ID() || keys[0].Algorithm != MegolmAlgorithm {
		t.Fatalf("keys %+v", keys)
	}
	// Shared already: nothing more to send, the same session.
	if again := share(t, alice, testRoom, users, EncryptionSettings{}); len(again) != 0 {
		t.Fatalf("second share sent %d requests", len(again))
	}
	if outboundSession(t, alice, testRoom).Session.ID() != out.Session.ID() {
		t.Fatal("session rotated without reason")
	}
	// Alice's own inbound copy exists, from index 0.
	alice.update(t, func(tx *cryptostore.Tx) error {
		in, err := tx.InboundGroupSession(testRoom, out.Session.ID())
		if err != nil || in.SenderKey != alice.m.ids.Curve25519.String() || in.Forwarded || in.Session.FirstKnownIndex() != 0 {
			t.Fatalf("own inbound session %+v: %v", in, err)
		}
		shares, _ := tx.Shares(out.Session.ID())
		if !slices.Equal(shares, []cryptostore.Share{{UserID: "@bob:example.org", DeviceID: "BOB"}}) {
			t.Fatalf("shares %+v", shares)
		}
		return nil
	})
}

// A new device of a member gets the session at the current index; a device
// without an Olm session is reported, and gets the key once it has one.
func TestShareRoomKeyNewDeviceAndMissingSession(t *testing.T) {
	ctx := context.Background()
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	bob := newRoomPeer(t, "@bob:example.org", "BOB")
	bob2 := newRoomPeer(t, "@bob:example.org", "BOB2")
	roomConnect(t, alice, bob)
	users := []string{"@bob:example.org"}
	share(t, alice, testRoom, users, EncryptionSettings{})
	for range 3 {
		if _, err := alice.m.EncryptRoomEvent(ctx, testRoom, "m.room.message", json.RawMessage(`{"body":"hi"}`)); err != nil {
			t.Fatal(err)
		}
	}
	alice.update(t, func(tx *cryptostore.Tx) error { return tx.PutDevice(bob2.device()) })
	reqs, err := alice.m.ShareRoomKey(ctx, testRoom, users, EncryptionSettings{})
	var inc *ShareIncompleteError
	if !errors.As(err, &inc) || !errors.Is(err, ErrNoOlmSession) || len(inc.NoSession) != 1 || inc.NoSession[0].DeviceID != "BOB2" || len(reqs) != 0 {
		t.Fatalf("share: %d requests, %v", len(reqs), err)
	}
	roomConnect(t, alice, bob2)
	reqs = share(t, alice, testRoom, users, EncryptionSettings{})
	keys := receiveRoomKeys(t, bob2, alice, reqs)
	if len(roomKeysFor(t, bob, reqs)) != 0 || len(keys) != 1 {
		t.Fatal("the key went to the wrong devices")
	}
	raw, _ := b64.Decode(keys[0].SessionKey)
	in, _ := megolm.NewInboundGroupSession(raw)
	if in.FirstKnownIndex() != 3 {
		t.Fatalf("shared at index %d, want 3", in.FirstKnownIndex())
	}
}

func TestShareRoomKeyRotation(t *testing.T) {
	ctx := context.Background()
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	bob := newRoomPeer(t, "@bob:example.org", "BOB")
	carol := newRoomPeer(t, "@carol:example.org", "CAROL")
	roomConnect(t, alice, bob)
	roomConnect(t, alice, carol)
	users := []string{"@bob:example.org", "@carol:example.org"}
	settings := EncryptionSettings{RotationPeriod: time.Hour, RotationMessages: 2}
	current := func() string { return outboundSession(t, alice, testRoom).Session.ID() }
	rotates := func(why string, step func()) {
		t.Helper()
		before := current()
		step()
		reqs := share(t, alice, testRoom, users, settings)
		if current() == before {
			t.Fatalf("%s: no rotation", why)
		}
		if len(reqs) == 0 {
			t.Fatalf("%s: the new session was not shared", why)
		}
	}
	share(t, alice, testRoom, users, settings)
	encrypt := func() {
		if _, err := alice.m.EncryptRoomEvent(ctx, testRoom, "m.room.message", json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	rotates("by count", func() {
		encrypt()
		encrypt()
	})
	encrypt() // one message: below the count
	before := current()
	alice.clock = alice.clock.Add(59 * time.Minute)
	share(t, alice, testRoom, users, settings)
	if current() != before {
		t.Fatal("rotated early")
	}
	rotates("by age", func() { alice.clock = alice.clock.Add(time.Minute) })
	rotates("a member left", func() { users = []string{"@carol:example.org"} })
	users = []string{"@bob:example.org", "@carol:example.org"}
	share(t, alice, testRoom, users, settings) // Bob is back: no need to rotate
	rotates("a device was removed", func() {
		alice.update(t, func(tx *cryptostore.Tx) error { return tx.RemoveDevice("@bob:example.org", "BOB") })
	})
	if got := share(t, alice, testRoom, users, settings); len(got) != 0 {
		t.Fatalf("%d requests, nothing to share", len(got))
	}
}

func TestEncryptionSettingsDefaultsAndCaps(t *testing.T) {
	for _, c := range []struct {
		in, want EncryptionSettings
	}{
		{EncryptionSettings{}, EncryptionSettings{DefaultRotationPeriod, DefaultRotationMessages}},
		{EncryptionSettings{-1, -1}, EncryptionSettings{DefaultRotationPeriod, DefaultRotationMessages}},
		{EncryptionSettings{time.Hour, 5}, EncryptionSettings{time.Hour, 5}},
		{EncryptionSettings{1000 * time.Hour, 1 << 30}, EncryptionSettings{MaxRotationPeriod, MaxRotationMessages}},
	} {
		if got := c.in.normalized(); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.in, got, c.want)
		}
	}
}

// More recipients than fit one request make several requests, each within
// RoomKeyMessagesPerRequest, and every device is shared with once.
func TestShareRoomKeyChunksRequests(t *testing.T) {
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	n := RoomKeyMessagesPerRequest + 3
	var bob *olm.Account
	alice.update(t, func(tx *cryptostore.Tx) error {
		acct, err := tx.Account()
		if err != nil {
			return err
		}
		bob, _ = olm.NewAccount(alice.m.rand)
		bob.GenerateOneTimeKeys(alice.m.rand, 1)
		otk := bob.OneTimeKeys()[0].Key
		// Every device has Bob's identity keys, so one Olm session serves
		// them all: the requests are what the test is about.
		sess, err := acct.Account.NewOutboundSession(alice.m.rand, bob.IdentityKeys().Curve25519, otk)
		if err != nil {
			return err
		}
		for i := range n {
			dev := &cryptostore.Device{UserID: "@bob:example.org", DeviceID: fmt.Sprintf("D%03d", i),
				Curve25519: bob.IdentityKeys().Curve25519.String(), Ed25519: bob.IdentityKeys().Ed25519.String(), KeysJSON: []byte(`{}`)}
			if err := tx.PutDevice(dev); err != nil {
				return err
			}
		}
		return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: bob.IdentityKeys().Curve25519.String(),
			Session: sess, CreatedAt: alice.clock, LastUsedAt: alice.clock})
	})
	reqs := share(t, alice, testRoom, []string{"@bob:example.org"}, EncryptionSettings{})
	total := 0
	for _, r := range reqs {
		var body toDeviceMessages
		json.Unmarshal(r.Body, &body)
		if k := len(body.Messages["@bob:example.org"]); k > RoomKeyMessagesPerRequest || k == 0 {
			t.Fatalf("request with %d messages", k)
		}
		total += len(body.Messages["@bob:example.org"])
	}
	if len(reqs) != 2 || total != n {
		t.Fatalf("%d requests, %d messages", len(reqs), total)
	}
}
