package machine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// sendPlaintext encrypts an arbitrary Olm payload from one peer to another
// with the sender's most recently used session, as a misbehaving client
// would, and returns the to-device event.
func sendPlaintext(t testing.TB, from, to *tdPeer, plaintext string) json.RawMessage {
	t.Helper()
	var content json.RawMessage
	from.update(t, func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(to.ids.Curve25519.String())
		if err != nil {
			return err
		}
		typ, body, err := recs[0].Session.Encrypt(from.rand, []byte(plaintext))
		if err != nil {
			return err
		}
		content, _ = json.Marshal(olmContent{Algorithm: OlmAlgorithm, SenderKey: from.ids.Curve25519.String(),
			Ciphertext: map[string]olmCiphertext{to.ids.Curve25519.String(): {Type: int(typ), Body: b64.Encode(body)}}})
		return tx.PutOlmSession(recs[0])
	})
	return toDeviceEvent(from.userID, EventRoomEncrypted, content)
}

// olmPayload returns a valid Olm payload from one peer to another, changed by
// edit.
func olmPayload(from, to *tdPeer, edit func(p map[string]any)) string {
	p := map[string]any{
		"type": "m.test", "content": map[string]any{}, "sender": from.userID, "recipient": to.userID,
		"recipient_keys": map[string]string{"ed25519": to.ids.Ed25519.String()},
		"keys":           map[string]string{"ed25519": from.ids.Ed25519.String()},
	}
	if edit != nil {
		edit(p)
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// editOlmContent changes the content of an encrypted to-device event.
func editOlmContent(ev json.RawMessage, edit func(c *olmContent)) json.RawMessage {
	var e rawEvent
	var c olmContent
	json.Unmarshal(ev, &e)
	json.Unmarshal(e.Content, &c)
	edit(&c)
	e.Content, _ = json.Marshal(c)
	out, _ := json.Marshal(e)
	return out
}

// withSender changes the sender of a to-device event.
func withSender(ev json.RawMessage, sender string) json.RawMessage {
	var e rawEvent
	json.Unmarshal(ev, &e)
	e.Sender = sender
	out, _ := json.Marshal(e)
	return out
}

// editOlmBody changes the Olm message body of an encrypted to-device event.
func editOlmBody(ev json.RawMessage, key string, edit func(body []byte) []byte) json.RawMessage {
	return editOlmContent(ev, func(c *olmContent) {
		ct := c.Ciphertext[key]
		body, _ := b64.Decode(ct.Body)
		ct.Body = b64.Encode(edit(body))
		c.Ciphertext[key] = ct
	})
}

// Every kind of bad input is a typed reason, and the store is byte-for-byte
// what it was: no session advanced, no one-time key used, no message hash
// recorded. (The sender was unwedged just before, so an undecryptable
// message records nothing either; unwedging has its own tests.) Afterwards
// the genuine messages still decrypt.
func TestBadInputIsTypedAndChangesNothing(t *testing.T) {
	alice, bob, _ := connectedPeers(t)
	aliceKey, bobKey := alice.ids.Curve25519.String(), bob.ids.Curve25519.String()
	bob.update(t, func(tx *cryptostore.Tx) error { return tx.SetUnwedged(aliceKey) })

	pre := olmSend(t, alice, bob, "m.test", `{"n":1}`) // a pre-key message: Bob has no session yet
	flip := func(i int) func([]byte) []byte {
		return func(b []byte) []byte { b[len(b)+i] ^= 1; return b }
	}
	cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	notJSON := strings.Repeat("x", 40)
	huge := toDeviceEvent(alice.userID, "m.test", json.RawMessage(`{"pad":"`+strings.Repeat("a", MaxEventSize)+`"}`))
	cases := []struct {
		name   string
		event  json.RawMessage
		reason error
		field  string // for plaintext failures
	}{
		{"malformed event JSON", json.RawMessage(`{"type":"m.room.encrypted","sender":`), ErrMalformedToDevice, ""},
		{"event too large", huge, ErrMalformedToDevice, ""},
		{"no sender", toDeviceEvent("", EventRoomEncrypted, json.RawMessage(`{}`)), ErrMalformedToDevice, ""},
		{"sender not a user ID", withSender(pre, "alice"), ErrMalformedToDevice, ""},
		{"content not an object", toDeviceEvent(alice.userID, EventRoomEncrypted, json.RawMessage(`[]`)), ErrMalformedToDevice, ""},
		{"unknown algorithm", editOlmContent(pre, func(c *olmContent) { c.Algorithm = MegolmAlgorithm }), ErrToDeviceAlgorithm, ""},
		{"bad sender key", editOlmContent(pre, func(c *olmContent) { c.SenderKey = "AAAA" }), ErrMalformedToDevice, ""},
		{"for another device", editOlmContent(pre, func(c *olmContent) {
			c.Ciphertext = map[string]olmCiphertext{aliceKey: c.Ciphertext[bobKey]}
		}), ErrNotForThisDevice, ""},
		{"unknown message type", editOlmContent(pre, func(c *olmContent) {
			c.Ciphertext[bobKey] = olmCiphertext{Type: 2, Body: c.Ciphertext[bobKey].Body}
		}), ErrMalformedToDevice, ""},
		{"body not base64", editOlmContent(pre, func(c *olmContent) {
			c.Ciphertext[bobKey] = olmCiphertext{Body: "!!"}
		}), ErrMalformedToDevice, ""},
		{"truncated pre-key body", editOlmBody(pre, bobKey, cut(20)), ErrMalformedToDevice, ""},
		{"truncated normal body", editOlmContent(editOlmBody(pre, bobKey, cut(20)), func(c *olmContent) {
			ct := c.Ciphertext[bobKey]
			ct.Type = int(olm.MessageTypeNormal)
			c.Ciphertext[bobKey] = ct
		}), ErrMalformedToDevice, ""},
		{"wrong MAC", editOlmBody(pre, bobKey, flip(-1)), ErrSessionWedged, ""},
		{"flipped ciphertext", editOlmBody(pre, bobKey, flip(-12)), ErrSessionWedged, ""},
		{"plaintext not JSON", sendPlaintext(t, alice, bob, notJSON), ErrInvalidOlmPlaintext, "plaintext"},
		{"wrong sender", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			p["sender"] = "@mallory:example.org"
		})), ErrInvalidOlmPlaintext, "sender"},
		{"wrong recipient", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			p["recipient"] = "@carol:example.org"
		})), ErrInvalidOlmPlaintext, "recipient"},
		{"wrong recipient_keys", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			p["recipient_keys"] = map[string]string{"ed25519": alice.ids.Ed25519.String()}
		})), ErrInvalidOlmPlaintext, "recipient_keys.ed25519"},
		{"no keys", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			delete(p, "keys")
		})), ErrInvalidOlmPlaintext, "keys.ed25519"},
		{"keys not the device's", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			p["keys"] = map[string]string{"ed25519": bob.ids.Ed25519.String()}
		})), ErrInvalidOlmPlaintext, "keys.ed25519"},
		{"no type", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			delete(p, "type")
		})), ErrInvalidOlmPlaintext, "type"},
		{"sender_device_keys of another device", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			p["sender_device_keys"] = bob.keysJSON
		})), ErrInvalidOlmPlaintext, "sender_device_keys.user_id"},
		{"sender_device_keys unsigned", sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
			var k map[string]any
			json.Unmarshal(alice.keysJSON, &k)
			delete(k, "signatures")
			p["sender_device_keys"] = k
		})), ErrInvalidOlmPlaintext, "sender_device_keys.signatures"},
	}
	before := storeDump(t, bob.path)
	for _, c := range cases {
		r := bob.receive(t, c.event)[0]
		if !errors.Is(r.Err, c.reason) || r.Event != nil {
			t.Errorf("%s: got %v, want %v", c.name, r.Err, c.reason)
		}
		var pe *OlmPlaintextError
		if c.field != "" && (!errors.As(r.Err, &pe) || pe.Field != c.field) {
			t.Errorf("%s: field of %v, want %s", c.name, r.Err, c.field)
		}
		if after := storeDump(t, bob.path); before != after {
			t.Fatalf("%s changed the store", c.name)
		}
	}
	var wedged *SessionWedgedError
	r := bob.receive(t, editOlmBody(pre, bobKey, flip(-1)))[0]
	if !errors.As(r.Err, &wedged) || !errors.Is(r.Err, olm.ErrBadMAC) || wedged.Unwedging != UnwedgeRateLimited ||
		wedged.SenderKey != aliceKey || wedged.MessageType != olm.MessageTypePreKey {
		t.Fatalf("wrong MAC: %#v", r.Err)
	}

	// The genuine messages decrypt: the pre-key message, then one sent after
	// the refused ones (their message keys are skipped).
	wantDecrypted(t, bob.receive(t, pre)[0], alice, "m.test", `{"n":1}`)
	wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{"n":2}`))[0], alice, "m.test", `{"n":2}`)

	// A valid sender_device_keys is accepted.
	good := sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) { p["sender_device_keys"] = alice.keysJSON }))
	wantDecrypted(t, bob.receive(t, good)[0], alice, "m.test", `{}`)
}

// A normal message from a sender with whom there is no session is wedged,
// not malformed, and says so.
func TestNormalMessageWithoutSession(t *testing.T) {
	clock := newStepClock()
	alice := newTDPeer(t, "@alice:example.org", "ALICE", clock)
	bob := newTDPeer(t, "@bob:example.org", "BOB", clock)
	carol := newTDPeer(t, "@bob:example.org", "CAROL", clock) // Bob's other device, with the same sessions' peer
	introducePeers(t, alice, bob)
	olmConnect(t, alice, carol)
	wantDecrypted(t, carol.receive(t, olmSend(t, alice, carol, "m.test", `{}`))[0], alice, "m.test", `{}`)
	wantDecrypted(t, alice.receive(t, olmSend(t, carol, alice, "m.test", `{}`))[0], carol, "m.test", `{}`)
	normal := olmSend(t, alice, carol, "m.test", `{}`)
	// Re-address the normal message to Bob, who has no session with Alice.
	ev := editOlmContent(normal, func(c *olmContent) {
		c.Ciphertext = map[string]olmCiphertext{bob.ids.Curve25519.String(): c.Ciphertext[carol.ids.Curve25519.String()]}
	})
	r := bob.receive(t, ev)[0]
	var wedged *SessionWedgedError
	if !errors.As(r.Err, &wedged) || !errors.Is(r.Err, ErrNoOlmSession) || wedged.SessionsTried != 0 {
		t.Fatalf("%v", r.Err)
	}
}

// FuzzReceiveToDevice hands arbitrary bytes to ReceiveSyncChanges as a
// to-device event: it never panics nor fails the batch, always reports one
// result, and an event that is refused leaves the store as it was (but for
// the user it marks for a key query when the sender's device is unknown).
func FuzzReceiveToDevice(f *testing.F) {
	clock := newStepClock()
	alice := newTDPeer(f, "@alice:example.org", "ALICE", clock)
	bob := newTDPeer(f, "@bob:example.org", "BOB", clock)
	introducePeers(f, alice, bob)
	olmConnect(f, alice, bob)
	bob.update(f, func(tx *cryptostore.Tx) error { return tx.SetUnwedged(alice.ids.Curve25519.String()) })
	pre := olmSend(f, alice, bob, "m.test", `{}`)
	f.Add([]byte(pre))
	f.Add([]byte(editOlmBody(pre, bob.ids.Curve25519.String(), func(b []byte) []byte { return b[:len(b)-1] })))
	f.Add([]byte(toDeviceEvent(alice.userID, "m.test", json.RawMessage(`{"a":1}`))))
	f.Add([]byte(`{"type":"m.room.encrypted","sender":"@a:b","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2"}}`))
	f.Fuzz(func(t *testing.T, event []byte) {
		before := storeDump(t, bob.path)
		res, err := bob.ReceiveSyncChanges(context.Background(), SyncChanges{ToDeviceEvents: []json.RawMessage{event}})
		if err != nil || len(res) != 1 {
			t.Fatalf("%d results, %v", len(res), err)
		}
		var w *SessionWedgedError
		if res[0].Err == nil || errors.As(res[0].Err, &w) && w.Unwedging == UnwedgeDeviceUnknown {
			return
		}
		if !isReason(res[0].Err) {
			t.Fatalf("untyped reason %v", res[0].Err)
		}
		if res[0].Event == nil && before != storeDump(t, bob.path) {
			t.Fatalf("refused event changed the store: %v", res[0].Err)
		}
	})
}

// Invariant 6: a one-time key is used up in the transaction that stores the
// session created from it, and only once a pre-key message decrypted and
// passed its checks: a forged or refused pre-key message leaves it in place.
func TestInvariant6OneTimeKeyUsedOnlyByACheckedPreKeyMessage(t *testing.T) {
	alice, bob, _ := connectedPeers(t)
	bobKey := bob.ids.Curve25519.String()
	state := func() (otks, sessions int) {
		bob.store.View(context.Background(), "state", func(tx *cryptostore.Tx) error {
			rec, _ := tx.Account()
			recs, _ := tx.OlmSessions(alice.ids.Curve25519.String())
			otks, sessions = len(rec.Account.AllOneTimeKeys()), len(recs)
			return nil
		})
		return otks, sessions
	}
	refused := sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) { p["recipient"] = "@eve:example.org" }))
	pre := olmSend(t, alice, bob, "m.test", `{}`)
	forged := editOlmBody(pre, bobKey, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	for _, ev := range []json.RawMessage{refused, forged} {
		if r := bob.receive(t, ev)[0]; r.Err == nil {
			t.Fatal("a bad pre-key message was accepted")
		}
		if otks, sessions := state(); otks != 1 || sessions != 0 {
			t.Fatalf("after a refused pre-key message: %d one-time keys, %d sessions", otks, sessions)
		}
	}
	wantDecrypted(t, bob.receive(t, pre)[0], alice, "m.test", `{}`)
	if otks, sessions := state(); otks != 0 || sessions != 1 {
		t.Fatalf("after the pre-key message: %d one-time keys, %d sessions", otks, sessions)
	}
}

// A pre-key message made from our fallback key creates its session and the
// fallback key stays, for the next peer that finds no one-time key left.
func TestPreKeyMessageFromFallbackKeyKeepsIt(t *testing.T) {
	clock := newStepClock()
	alice := newTDPeer(t, "@alice:example.org", "ALICE", clock)
	bob := newTDPeer(t, "@bob:example.org", "BOB", clock)
	introducePeers(t, alice, bob)
	var fallback olm.Curve25519PublicKey
	bob.update(t, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		if err := rec.Account.GenerateFallbackKey(bob.rand); err != nil {
			return err
		}
		k, _ := rec.Account.FallbackKey()
		fallback = k.Key
		return tx.PutAccount(rec)
	})
	for i := range 2 { // two sessions from the same fallback key
		alice.update(t, func(tx *cryptostore.Tx) error {
			rec, err := tx.Account()
			if err != nil {
				return err
			}
			s, err := rec.Account.NewOutboundSession(alice.rand, bob.ids.Curve25519, fallback)
			if err != nil {
				return err
			}
			now := alice.now()
			return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: bob.ids.Curve25519.String(), Session: s, CreatedAt: now, LastUsedAt: now})
		})
		wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
		bob.store.View(context.Background(), "check", func(tx *cryptostore.Tx) error {
			rec, _ := tx.Account()
			recs, _ := tx.OlmSessions(alice.ids.Curve25519.String())
			if k, ok := rec.Account.FallbackKey(); !ok || k.Key != fallback || len(recs) != i+1 {
				t.Errorf("session %d: fallback key kept %t, %d sessions", i, ok && k.Key == fallback, len(recs))
			}
			return nil
		})
	}
}
