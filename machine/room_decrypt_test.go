package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
)

// roomEvent wraps an m.room.encrypted content in a room event's envelope.
func roomEvent(id, sender string, content json.RawMessage) json.RawMessage {
	ev, _ := json.Marshal(map[string]any{"type": EventRoomEncrypted, "event_id": id, "sender": sender,
		"origin_server_ts": 1_700_000_000_000, "content": content})
	return ev
}

// withCiphertext returns content with its ciphertext bytes changed by f.
func withCiphertext(t testing.TB, content json.RawMessage, f func([]byte) []byte) json.RawMessage {
	t.Helper()
	var c megolmContent
	if err := json.Unmarshal(content, &c); err != nil {
		t.Fatal(err)
	}
	raw, err := b64.Decode(c.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	c.Ciphertext = b64.Encode(f(raw))
	out, _ := json.Marshal(c)
	return out
}

// sharedRoom has Alice share a room key with Bob and returns both.
func sharedRoom(t testing.TB) (alice, bob *roomPeer) {
	t.Helper()
	alice = newRoomPeer(t, "@alice:example.org", "ALICE")
	bob = newRoomPeer(t, "@bob:example.org", "BOB")
	roomConnect(t, alice, bob)
	receiveRoomKeys(t, bob, alice, share(t, alice, testRoom, []string{"@bob:example.org"}, EncryptionSettings{}))
	return alice, bob
}

func encryptText(t testing.TB, p *roomPeer, room, text string) json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"msgtype": "m.text", "body": text})
	c, err := p.m.EncryptRoomEvent(context.Background(), room, "m.room.message", body)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDecryptRoomEvent(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	for i := range 3 {
		ev := roomEvent(fmt.Sprintf("$e%d", i), "@alice:example.org", encryptText(t, alice, testRoom, fmt.Sprint("hello ", i)))
		d, err := bob.m.DecryptRoomEvent(ctx, testRoom, ev)
		if err != nil {
			t.Fatal(err)
		}
		if d.Type != "m.room.message" || !strings.Contains(string(d.Content), fmt.Sprint("hello ", i)) ||
			d.MessageIndex != uint32(i) || d.EventID != fmt.Sprintf("$e%d", i) || d.Sender != "@alice:example.org" ||
			d.OriginServerTS != 1_700_000_000_000 || d.RoomID != testRoom || d.Forwarded ||
			d.SenderKey != alice.m.ids.Curve25519.String() || d.ClaimedEd25519 != alice.m.ids.Ed25519.String() ||
			d.SenderDevice == nil || d.SenderDevice.DeviceID != "ALICE" {
			t.Fatalf("decrypted %+v", d)
		}
		js, _ := d.Event()
		var back decryptedEventJSON
		if err := json.Unmarshal(js, &back); err != nil || back.Type != d.Type || back.EventID != d.EventID || back.RoomID != testRoom {
			t.Fatalf("event JSON %s: %v", js, err)
		}
	}
	// The sender decrypts its own messages, vouched for by its own device.
	ev := roomEvent("$own", "@alice:example.org", encryptText(t, alice, testRoom, "mine"))
	d, err := alice.m.DecryptRoomEvent(ctx, testRoom, ev)
	if err != nil || d.SenderDevice == nil || d.SenderDevice.DeviceID != "ALICE" || d.MessageIndex != 3 {
		t.Fatalf("own message %+v: %v", d, err)
	}
}

// Invariant 8: the same event again decrypts; another event at the same
// index is a replay, and changes nothing.
func TestInvariant8RoomEventReplay(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	content := encryptText(t, alice, testRoom, "once")
	if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$first", "@alice:example.org", content)); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$first", "@alice:example.org", content)); err != nil {
		t.Fatalf("the same event again: %v", err)
	}
	before := storeDump(t, bob.path)
	_, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$second", "@alice:example.org", content))
	var replay *cryptostore.ReplayError
	if !errors.As(err, &replay) || replay.FirstEvent != "$first" || replay.Index != 0 {
		t.Fatalf("replay: %v", err)
	}
	if before != storeDump(t, bob.path) {
		t.Fatal("a replay changed the store")
	}
}

// Every bad event is a typed error and leaves the store byte-identical.
func TestDecryptRoomEventBadInput(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	good := encryptText(t, alice, testRoom, "first")
	later := encryptText(t, alice, testRoom, "second")
	// The same session stored under another room too: its events must still
	// be refused there.
	var sessionID string
	bob.update(t, func(tx *cryptostore.Tx) error {
		var c megolmContent
		json.Unmarshal(good, &c)
		sessionID = c.SessionID
		rec, err := tx.InboundGroupSession(testRoom, sessionID)
		if err != nil {
			return err
		}
		rec.RoomID = "!other:example.org"
		_, err = tx.PutInboundGroupSession(rec)
		return err
	})
	// A session known only from index 1 (exported after the first message).
	late := newRoomPeer(t, "@bob:example.org", "BOB")
	late.update(t, func(tx *cryptostore.Tx) error {
		_, err := tx.InboundGroupSession(testRoom, sessionID)
		if !errors.Is(err, cryptostore.ErrNotFound) {
			return fmt.Errorf("fresh store has the session: %v", err)
		}
		var src *cryptostore.InboundGroupSessionRecord
		bob.m.store.View(ctx, "read", func(btx *cryptostore.Tx) error {
			src, err = btx.InboundGroupSession(testRoom, sessionID)
			return err
		})
		exp, err := src.Session.Export(1)
		if err != nil {
			return err
		}
		in, err := megolm.ImportInboundGroupSession(exp)
		if err != nil {
			return err
		}
		rec := &cryptostore.InboundGroupSessionRecord{RoomID: testRoom, SenderKey: src.SenderKey, SigningKey: src.SigningKey, Session: in, Forwarded: true}
		_, err = tx.PutInboundGroupSession(rec)
		return err
	})
	if _, err := late.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$later", "@alice:example.org", later)); err != nil {
		t.Fatalf("the late copy decrypts index 1: %v", err)
	}

	flip := func(at func(n int) int) json.RawMessage {
		return withCiphertext(t, good, func(b []byte) []byte { b[at(len(b))] ^= 1; return b })
	}
	share(t, alice, "!elsewhere:example.org", nil, EncryptionSettings{}) // a session Bob never gets
	other := encryptText(t, alice, "!elsewhere:example.org", "unshared")
	const alice_ = "@alice:example.org"
	cases := []struct {
		name  string
		peer  *roomPeer
		room  string
		event json.RawMessage
		want  error
	}{
		{"not json", bob, testRoom, json.RawMessage(`{"type":`), ErrMalformedRoomEvent},
		{"too large", bob, testRoom, json.RawMessage(`{"x":"` + strings.Repeat("a", MaxEventSize) + `"}`), ErrMalformedRoomEvent},
		{"not encrypted", bob, testRoom, json.RawMessage(`{"type":"m.room.message","event_id":"$x","sender":"@a:b","content":{}}`), ErrMalformedRoomEvent},
		{"no event id", bob, testRoom, roomEvent("", alice_, good), ErrMalformedRoomEvent},
		{"content not an object", bob, testRoom, roomEvent("$x", alice_, json.RawMessage(`[1]`)), ErrMalformedRoomEvent},
		{"unknown algorithm", bob, testRoom, roomEvent("$x", alice_, json.RawMessage(`{"algorithm":"m.megolm.v2.aes-sha2","session_id":"x","ciphertext":"AAAA"}`)), ErrUnsupportedRoomAlgorithm},
		{"olm algorithm", bob, testRoom, roomEvent("$x", alice_, json.RawMessage(`{"algorithm":"`+OlmAlgorithm+`","ciphertext":{}}`)), ErrUnsupportedRoomAlgorithm},
		{"bad base64", bob, testRoom, roomEvent("$x", alice_, json.RawMessage(`{"algorithm":"`+MegolmAlgorithm+`","session_id":"`+sessionID+`","ciphertext":"!!"}`)), ErrMalformedRoomEvent},
		{"unknown session", bob, "!elsewhere:example.org", roomEvent("$x", alice_, other), ErrMissingRoomKey},
		{"envelope names another room", bob, testRoom, json.RawMessage(`{"type":"m.room.encrypted","event_id":"$x","sender":"@alice:example.org","room_id":"!other:example.org","content":` + string(good) + `}`), ErrRoomMismatch},
		{"plaintext names another room", bob, "!other:example.org", roomEvent("$x", alice_, good), ErrRoomMismatch},
		{"bad mac", bob, testRoom, roomEvent("$x", alice_, flip(func(n int) int { return n - 64 - 1 })), megolm.ErrBadMAC},
		{"bad signature", bob, testRoom, roomEvent("$x", alice_, flip(func(n int) int { return n - 1 })), megolm.ErrBadMAC},
		{"flipped body", bob, testRoom, roomEvent("$x", alice_, flip(func(n int) int { return n - 64 - 8 - 1 })), megolm.ErrBadMAC},
		{"truncated", bob, testRoom, roomEvent("$x", alice_, withCiphertext(t, good, func(b []byte) []byte { return b[:len(b)-70] })), megolm.ErrInvalidMessage},
		{"empty ciphertext", bob, testRoom, roomEvent("$x", alice_, withCiphertext(t, good, func(b []byte) []byte { return nil })), megolm.ErrInvalidMessage},
		{"index below the first known", late, testRoom, roomEvent("$x", alice_, good), megolm.ErrUnknownMessageIndex},
		{"sender does not own the key", bob, testRoom, roomEvent("$x", "@mallory:example.org", good), ErrSenderMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := storeDump(t, c.peer.path)
			d, err := c.peer.m.DecryptRoomEvent(ctx, c.room, c.event)
			if !errors.Is(err, c.want) || d != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if before != storeDump(t, c.peer.path) {
				t.Fatal("the store changed")
			}
		})
	}
	var idx *megolm.UnknownMessageIndexError
	_, err := late.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$x", alice_, good))
	if !errors.As(err, &idx) || idx.FirstKnown != 1 || idx.Index != 0 {
		t.Fatalf("unknown index: %v", err)
	}
	var missing *MissingRoomKeyError
	_, err = bob.m.DecryptRoomEvent(ctx, "!elsewhere:example.org", roomEvent("$x", alice_, other))
	if !errors.As(err, &missing) || missing.SessionID == "" || missing.SessionID == sessionID {
		t.Fatalf("missing key: %v", err)
	}
	// After all that, the good event still decrypts.
	if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$good", alice_, good)); err != nil {
		t.Fatal(err)
	}
}

// A batch reports each event's outcome; failed events change nothing, the
// others commit together.
func TestDecryptRoomEventsBatch(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	var events, contents []json.RawMessage
	for i := range 5 {
		contents = append(contents, encryptText(t, alice, testRoom, fmt.Sprint(i)))
		events = append(events, roomEvent(fmt.Sprintf("$e%d", i), "@alice:example.org", contents[i]))
	}
	replayed := roomEvent("$replayed", "@alice:example.org", contents[1])
	batch := []json.RawMessage{events[0], events[3], []byte(`nonsense`), events[1], events[1], replayed, events[4]}
	results, err := bob.m.DecryptRoomEvents(ctx, testRoom, batch)
	if err != nil {
		t.Fatal(err)
	}
	wantIndex := []int{0, 3, -1, 1, 1, -1, 4}
	for i, r := range results {
		switch {
		case wantIndex[i] < 0 && r.Err == nil, wantIndex[i] >= 0 && (r.Err != nil || int(r.Event.MessageIndex) != wantIndex[i]):
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if !errors.Is(results[2].Err, ErrMalformedRoomEvent) || !errors.Is(results[5].Err, cryptostore.ErrReplay) {
		t.Fatalf("errors %v, %v", results[2].Err, results[5].Err)
	}
	// The batch committed: the replay records are there.
	if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$other", "@alice:example.org", contents[3])); !errors.Is(err, cryptostore.ErrReplay) {
		t.Fatalf("index 3 not recorded: %v", err)
	}
	if _, err := bob.m.DecryptRoomEvents(ctx, testRoom, make([]json.RawMessage, MaxRoomEventsPerBatch+1)); !errors.Is(err, ErrRoomBatchTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
	// A batch whose transaction fails changes nothing.
	before := storeDump(t, bob.path)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := bob.m.DecryptRoomEvents(cancelled, testRoom, []json.RawMessage{events[2]}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled batch: %v", err)
	}
	if before != storeDump(t, bob.path) {
		t.Fatal("a failed batch changed the store")
	}
}

// FuzzDecryptRoomEvent feeds arbitrary events to DecryptRoomEvent: it never
// panics, an event it refuses leaves the store byte-identical, and one it
// accepts is one of the messages Alice sent (a forgery never decrypts).
func FuzzDecryptRoomEvent(f *testing.F) {
	alice, bob := sharedRoom(f)
	sent := map[string]bool{}
	for i := range 3 {
		text := fmt.Sprint("seed ", i)
		sent[text] = true
		content := encryptText(f, alice, testRoom, text)
		f.Add([]byte(roomEvent(fmt.Sprintf("$s%d", i), "@alice:example.org", content)))
		f.Add([]byte(roomEvent("$t", "@alice:example.org", withCiphertext(f, content, func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }))))
		f.Add([]byte(roomEvent("$u", "@alice:example.org", withCiphertext(f, content, func(b []byte) []byte { return b[:len(b)/2] }))))
	}
	f.Add([]byte(`{"type":"m.room.encrypted","event_id":"$x","sender":"@a:b","content":{"algorithm":"m.megolm.v1.aes-sha2","session_id":"","ciphertext":""}}`))
	f.Add([]byte(`{}`))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, event []byte) {
		before := storeDump(t, bob.path)
		d, err := bob.m.DecryptRoomEvent(ctx, testRoom, event)
		if err != nil {
			if d != nil {
				t.Fatal("a result with an error")
			}
			if before != storeDump(t, bob.path) {
				t.Fatalf("refused event %q changed the store: %v", event, err)
			}
			return
		}
		var c struct{ Body string }
		if json.Unmarshal(d.Content, &c) != nil || !sent[c.Body] || d.Type != "m.room.message" {
			t.Fatalf("decrypted something Alice never sent: %+v", d)
		}
	})
}

// An event that decrypts but then fails a check moves nothing, in the store
// or in its cache, even when its decryption moved the session's latest
// ratchet on: the next events decrypt from the session as it was.
func TestRoomEventRefusedAfterDecryptionMovesNothing(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	const sender = "@alice:example.org"
	d, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$e0", sender, encryptText(t, alice, testRoom, "0")))
	if err != nil {
		t.Fatal(err)
	}
	skipped := encryptText(t, alice, testRoom, "1")
	forged := roomEvent("$e2", "@mallory:example.org", encryptText(t, alice, testRoom, "2"))
	if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, forged); !errors.Is(err, ErrSenderMismatch) {
		t.Fatalf("an event from another sender: %v", err)
	}
	err = bob.m.store.View(ctx, "read", func(tx *cryptostore.Tx) error {
		rec, err := tx.InboundGroupSession(testRoom, d.SessionID) // from the cache
		if err == nil && rec.Session.LatestIndex() != 0 {
			t.Errorf("the cached session moved to index %d", rec.Session.LatestIndex())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if latest := storedSession(t, bob).Session.LatestIndex(); latest != 0 {
		t.Fatalf("the stored session moved to index %d", latest)
	}
	if d, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$e1", sender, skipped)); err != nil || d.MessageIndex != 1 {
		t.Fatalf("the event before the refused one: %v", err)
	}
	next := roomEvent("$e3", sender, encryptText(t, alice, testRoom, "3"))
	if d, err := bob.m.DecryptRoomEvent(ctx, testRoom, next); err != nil || d.MessageIndex != 3 {
		t.Fatalf("the event after the refused one: %v", err)
	}
}
