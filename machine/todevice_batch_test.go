package machine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/olm"
)

// A batch checks its messages' hashes in one lookup and records them at its
// end, with the same outcome as one event at a time: across the chunks the
// store looks hashes up in (130 = 100 + 30), a second copy in the same or a
// later batch is a duplicate, and a message refused by its plaintext checks
// leaves no hash, so that it is refused for the same reason when it comes
// again (DESIGN.md invariant 7).
func TestInvariant7BatchRecordsOnlyDecryptedHashes(t *testing.T) {
	alice, bob, _ := connectedPeers(t)
	wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
	forged := sendPlaintext(t, alice, bob, olmPayload(alice, bob, func(p map[string]any) {
		p["sender"] = "@mallory:example.org"
	}))
	batch := []json.RawMessage{forged}
	for i := range 130 {
		batch = append(batch, olmSend(t, alice, bob, "m.test", fmt.Sprintf(`{"n":%d}`, i)))
	}
	batch = append(batch, batch[1], forged, batch[130])

	res := bob.receive(t, batch...)
	var pe *OlmPlaintextError
	for _, i := range []int{0, 132} {
		if !errors.As(res[i].Err, &pe) || pe.Field != "sender" {
			t.Fatalf("forged event %d: %v", i, res[i].Err)
		}
	}
	for i := range 130 {
		wantDecrypted(t, res[1+i], alice, "m.test", fmt.Sprintf(`{"n":%d}`, i))
	}
	for _, i := range []int{131, 133} {
		if !errors.Is(res[i].Err, ErrDuplicateOlmMessage) {
			t.Fatalf("second copy %d in the batch: %v", i, res[i].Err)
		}
	}
	if n := hashCount(t, bob); n != 131 {
		t.Fatalf("%d message hashes stored, want 131 (the first message and the batch's 130)", n)
	}

	res = bob.receive(t, batch...)
	if !errors.As(res[0].Err, &pe) || pe.Field != "sender" {
		t.Fatalf("forged event again: %v", res[0].Err)
	}
	for i := 1; i <= 130; i++ {
		if !errors.Is(res[i].Err, ErrDuplicateOlmMessage) {
			t.Fatalf("event %d again: %v", i, res[i].Err)
		}
	}
	if n := hashCount(t, bob); n != 131 {
		t.Fatalf("%d message hashes after the second batch, want 131", n)
	}
}

// hashCount counts the message hashes in p's store.
func hashCount(t testing.TB, p *tdPeer) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+p.path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM olm_message_hashes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Parsing the batch first changes nothing about which events are refused
// and why: malformed, cleartext and encrypted events mixed in one batch get
// the results they get one at a time.
func TestBatchResultsMatchOneAtATime(t *testing.T) {
	alice, bob, _ := connectedPeers(t)
	pre := olmSend(t, alice, bob, "m.test", `{"n":1}`)
	batch := []json.RawMessage{
		json.RawMessage(`{"type":"m.room.encrypted","sender":`),
		toDeviceEvent(alice.userID, "m.test", json.RawMessage(`{"a":1}`)),
		editOlmContent(pre, func(c *olmContent) { c.Algorithm = MegolmAlgorithm }),
		pre,
		json.RawMessage(`{"type":"m.test","sender":"@alice:example.org","content":{"a":"\xff"}}`),
		json.RawMessage(`{"type":"m.test","type":"m.other","sender":"@alice:example.org","content":{}}`),
		pre,
	}
	res := bob.receive(t, batch...)
	for i, want := range []error{ErrMalformedToDevice, nil, ErrToDeviceAlgorithm, nil, ErrMalformedToDevice,
		ErrMalformedToDevice, ErrDuplicateOlmMessage} {
		if !errors.Is(res[i].Err, want) || (want == nil) != (res[i].Event != nil) {
			t.Errorf("event %d: %v, event %s; want %v", i, res[i].Err, res[i].Event, want)
		}
	}
	if string(res[1].Event) != string(batch[1]) || res[1].Encrypted || res[1].Type != "m.test" {
		t.Errorf("cleartext event: %+v", res[1])
	}
	wantDecrypted(t, res[3], alice, "m.test", `{"n":1}`)
	var ev decryptedToDevice
	if err := json.Unmarshal(res[3].Event, &ev); err != nil || ev.Sender != alice.userID {
		t.Fatalf("decrypted event %s: %v", res[3].Event, err)
	}
	bob.store.View(context.Background(), "check", func(tx *cryptostore.Tx) error {
		if at, _ := tx.LastUnwedged(alice.ids.Curve25519.String()); !at.IsZero() {
			t.Error("the batch started unwedging")
		}
		return nil
	})
}

// A batch of normal messages that all decrypt looks no hash up; a message
// decrypted before that decrypts again all the same — here because Bob's
// session was put back to a state from before it, as a restored backup
// would — is still a duplicate, alone or among new messages: the batch is
// undone and run again with the lookup first, and nothing it did the first
// time (the session's advance, the other events' hashes) is lost or doubled
// (DESIGN.md invariant 7).
func TestInvariant7DuplicateThatDecryptsAgain(t *testing.T) {
	alice, bob, clock := connectedPeers(t)
	wantDecrypted(t, bob.receive(t, olmSend(t, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
	wantDecrypted(t, alice.receive(t, olmSend(t, bob, alice, "m.test", `{}`))[0], bob, "m.test", `{}`)
	old := sessionWith(t, bob, alice)
	first := olmSend(t, alice, bob, "m.test", `{"n":1}`)
	wantDecrypted(t, bob.receive(t, first)[0], alice, "m.test", `{"n":1}`)
	rollBack := func() {
		bob.update(t, func(tx *cryptostore.Tx) error {
			return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: alice.ids.Curve25519.String(),
				Session: old.Clone(), CreatedAt: clock.Now(), LastUsedAt: clock.Now()})
		})
	}
	rollBack()
	if res := bob.receive(t, first); !errors.Is(res[0].Err, ErrDuplicateOlmMessage) {
		t.Fatalf("the message again, alone: %v (%s)", res[0].Err, res[0].Event)
	}
	rollBack()
	second := olmSend(t, alice, bob, "m.test", `{"n":2}`)
	res := bob.receive(t, second, first)
	wantDecrypted(t, res[0], alice, "m.test", `{"n":2}`)
	if !errors.Is(res[1].Err, ErrDuplicateOlmMessage) {
		t.Fatalf("the message again, after a new one: %v (%s)", res[1].Err, res[1].Event)
	}
	if n := hashCount(t, bob); n != 3 {
		t.Fatalf("%d message hashes, want 3", n)
	}
	third := olmSend(t, alice, bob, "m.test", `{"n":3}`)
	wantDecrypted(t, bob.receive(t, third)[0], alice, "m.test", `{"n":3}`)
}

// sessionWith returns a copy of p's most recently used session with peer.
func sessionWith(t testing.TB, p, peer *tdPeer) *olm.Session {
	t.Helper()
	var s *olm.Session
	err := p.store.View(context.Background(), "session", func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(peer.ids.Curve25519.String())
		if err == nil && len(recs) > 0 {
			s = recs[0].Session
		}
		return err
	})
	if err != nil || s == nil {
		t.Fatalf("no session: %v", err)
	}
	return s
}

// TestInvariant7HashFromAnEarlierLayout: a message whose hash the store
// holds in the layout of earlier builds (the whole SHA-256, before hashes
// were ordered by sending chain) is still a duplicate when it comes again,
// not a wedged session (DESIGN.md invariant 7): a store upgraded in place
// keeps its hashes until they are pruned.
func TestInvariant7HashFromAnEarlierLayout(t *testing.T) {
	alice, bob, _ := connectedPeers(t)
	msg := olmSend(t, alice, bob, "m.test", `{}`)
	wantDecrypted(t, bob.receive(t, msg)[0], alice, "m.test", `{}`)
	_, ev := parseToDevice(msg, bob.ids.Curve25519.String())
	if ev == nil {
		t.Fatal("the event does not parse")
	}
	bob.update(t, func(tx *cryptostore.Tx) error {
		if n, err := tx.PruneOlmMessages(0, 1000); err != nil || n != 1 {
			t.Fatalf("pruned %d hashes (%v), want 1", n, err)
		}
		return tx.AddOlmMessage(cryptostore.LegacyOlmMessageHash(ev.senderKey, int(ev.typ), ev.body), ev.senderKey)
	})
	before := storeDump(t, bob.path)
	if res := bob.receive(t, msg); !errors.Is(res[0].Err, ErrDuplicateOlmMessage) {
		t.Fatalf("the message again: %v", res[0].Err)
	}
	if after := storeDump(t, bob.path); after != before {
		t.Fatalf("a duplicate changed the store:\n%s\n---\n%s", before, after)
	}
}
