package machine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
)

func roomKeyJSON(room string, s *megolm.OutboundGroupSession) string {
	b, _ := json.Marshal(roomKeyContent{Algorithm: MegolmAlgorithm, RoomID: room, SessionID: s.ID(), SessionKey: b64.Encode(s.SessionKey())})
	return string(b)
}

// inbound returns the stored inbound group session, or nil.
func (p *tdPeer) inbound(t testing.TB, room, sessionID string) *cryptostore.InboundGroupSessionRecord {
	t.Helper()
	var rec *cryptostore.InboundGroupSessionRecord
	p.store.View(context.Background(), "inbound", func(tx *cryptostore.Tx) error {
		var err error
		rec, err = tx.InboundGroupSession(room, sessionID)
		if errors.Is(err, cryptostore.ErrNotFound) {
			return nil
		}
		return err
	})
	return rec
}

// An m.room_key is stored with the Olm sender's Curve25519 key and the
// Ed25519 key its plaintext claims, and decrypts the room's messages; a
// later copy (higher first index) does not replace an earlier one, and an
// earlier one replaces a later (invariant 10).
func TestRoomKeyStoredKeepingTheBetterCopy(t *testing.T) {
	alice, bob, _ := connectedPeers(t)
	const room = "!room:example.org"
	out, _ := megolm.NewOutboundGroupSession(rand.Reader)
	early := roomKeyJSON(room, out)

	r := bob.receive(t, olmSend(t, alice, bob, EventRoomKey, early))[0]
	wantDecrypted(t, r, alice, EventRoomKey, early)
	if *r.RoomKey != (RoomKeyInfo{RoomID: room, SessionID: out.ID(), Stored: true}) {
		t.Fatalf("room key %+v", r.RoomKey)
	}
	rec := bob.inbound(t, room, out.ID())
	if rec == nil || rec.SenderKey != alice.ids.Curve25519.String() || rec.SigningKey != alice.ids.Ed25519.String() ||
		rec.Forwarded || rec.Session.FirstKnownIndex() != 0 {
		t.Fatalf("stored %+v", rec)
	}
	msg, _ := out.Encrypt([]byte("hello"))
	if pt, idx, err := rec.Session.Decrypt(msg); err != nil || string(pt) != "hello" || idx != 0 {
		t.Fatalf("decrypt: %q %d %v", pt, idx, err)
	}

	late := roomKeyJSON(room, out) // at index 1
	r = bob.receive(t, olmSend(t, alice, bob, EventRoomKey, late))[0]
	if r.Err != nil || r.RoomKey.Stored || bob.inbound(t, room, out.ID()).Session.FirstKnownIndex() != 0 {
		t.Fatalf("a later copy replaced the earlier: %+v %v", r.RoomKey, r.Err)
	}

	// The other order: the later copy first, then the earlier one wins.
	out2, _ := megolm.NewOutboundGroupSession(rand.Reader)
	early2 := roomKeyJSON(room, out2)
	out2.Encrypt([]byte("x"))
	res := bob.receive(t, olmSend(t, alice, bob, EventRoomKey, roomKeyJSON(room, out2)), olmSend(t, alice, bob, EventRoomKey, early2))
	if !res[0].RoomKey.Stored || !res[1].RoomKey.Stored || bob.inbound(t, room, out2.ID()).Session.FirstKnownIndex() != 0 {
		t.Fatalf("the earlier copy was not kept: %+v %+v", res[0].RoomKey, res[1].RoomKey)
	}
}

// A room key event that decrypts but whose key is wrong is reported with the
// event and the reason; its Olm decryption is committed (a second copy is a
// duplicate), the key is not stored. A cleartext m.room_key is passed
// through and never stored.
func TestRoomKeyRefused(t *testing.T) {
	alice, bob, _ := connectedPeers(t)
	const room = "!room:example.org"
	out, _ := megolm.NewOutboundGroupSession(rand.Reader)
	other, _ := megolm.NewOutboundGroupSession(rand.Reader)
	key := out.SessionKey()
	key[len(key)-1] ^= 1
	content := func(edit func(c *roomKeyContent)) string {
		c := roomKeyContent{Algorithm: MegolmAlgorithm, RoomID: room, SessionID: out.ID(), SessionKey: b64.Encode(out.SessionKey())}
		edit(&c)
		b, _ := json.Marshal(c)
		return string(b)
	}
	cases := []struct {
		name, content, field string
		err                  error
	}{
		{"session_id of another session", content(func(c *roomKeyContent) { c.SessionID = other.ID() }), "session_id", nil},
		{"bad signature", content(func(c *roomKeyContent) { c.SessionKey = b64.Encode(key) }), "session_key", megolm.ErrBadSignature},
		{"truncated key", content(func(c *roomKeyContent) { c.SessionKey = c.SessionKey[:40] }), "session_key", megolm.ErrInvalidSessionKey},
		{"unknown algorithm", content(func(c *roomKeyContent) { c.Algorithm = "m.megolm.v2" }), "algorithm", nil},
		{"no room", content(func(c *roomKeyContent) { c.RoomID = "" }), "room_id", nil},
		{"content of the wrong shape", `{"algorithm":1}`, "content", nil},
	}
	for _, c := range cases {
		ev := olmSend(t, alice, bob, EventRoomKey, c.content)
		r := bob.receive(t, ev)[0]
		var rke *RoomKeyError
		if !errors.As(r.Err, &rke) || (c.field != "" && rke.Field != c.field) || (c.err != nil && !errors.Is(r.Err, c.err)) {
			t.Errorf("%s: %v", c.name, r.Err)
			continue
		}
		if r.Event == nil || r.RoomKey != nil {
			t.Errorf("%s: event %s, key %+v", c.name, r.Event, r.RoomKey)
		}
		if again := bob.receive(t, ev)[0]; !errors.Is(again.Err, ErrDuplicateOlmMessage) {
			t.Errorf("%s: the Olm decryption was not committed: %v", c.name, again.Err)
		}
	}
	cleartext := toDeviceEvent(alice.userID, EventRoomKey, json.RawMessage(roomKeyJSON(room, out)))
	if r := bob.receive(t, cleartext)[0]; r.Err != nil || r.Encrypted || r.RoomKey != nil || string(r.Event) != string(cleartext) {
		t.Fatalf("cleartext room key: %+v", r)
	}
	if bob.inbound(t, room, out.ID()) != nil || bob.inbound(t, room, other.ID()) != nil {
		t.Fatal("a refused room key was stored")
	}
}

// m.forwarded_room_key from another of our devices is stored as forwarded,
// with the original sender's keys; from anyone else it is refused.
func TestForwardedRoomKey(t *testing.T) {
	clock := newStepClock()
	alice := newTDPeer(t, "@alice:example.org", "ALICE", clock)
	bob := newTDPeer(t, "@bob:example.org", "BOB", clock)
	bob2 := newTDPeer(t, "@bob:example.org", "BOB2", clock)
	introducePeers(t, alice, bob)
	introducePeers(t, bob2, bob)
	olmConnect(t, alice, bob)
	olmConnect(t, bob2, bob)
	const room = "!room:example.org"
	out, _ := megolm.NewOutboundGroupSession(rand.Reader)
	in, _ := megolm.NewInboundGroupSession(out.SessionKey())
	fwd, _ := json.Marshal(forwardedRoomKeyContent{
		Algorithm: MegolmAlgorithm, RoomID: room, SenderKey: alice.ids.Curve25519.String(), SessionID: out.ID(),
		SessionKey: b64.Encode(in.ExportAtFirstKnownIndex()), SenderClaimedEd25519Key: alice.ids.Ed25519.String(),
		ForwardingCurve25519KeyChain: []string{},
	})

	r := bob.receive(t, olmSend(t, alice, bob, EventForwardedRoomKey, string(fwd)))[0]
	if !errors.Is(r.Err, ErrUntrustedForward) || r.Event == nil || bob.inbound(t, room, out.ID()) != nil {
		t.Fatalf("forwarded by another user: %+v", r)
	}
	r = bob.receive(t, olmSend(t, bob2, bob, EventForwardedRoomKey, string(fwd)))[0]
	wantDecrypted(t, r, bob2, EventForwardedRoomKey, string(fwd))
	if *r.RoomKey != (RoomKeyInfo{RoomID: room, SessionID: out.ID(), Forwarded: true, Stored: true}) {
		t.Fatalf("room key %+v", r.RoomKey)
	}
	rec := bob.inbound(t, room, out.ID())
	if rec == nil || !rec.Forwarded || rec.SenderKey != alice.ids.Curve25519.String() || rec.SigningKey != alice.ids.Ed25519.String() {
		t.Fatalf("stored %+v", rec)
	}
}
