package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/megolm"
)

// Decrypting events again (a timeline reloaded, a page scrolled back to)
// changes nothing in the store: their index uses are recorded already, and a
// session whose latest ratchet did not move is not written back, neither in
// a batch nor one at a time.
func TestRoomRedecryptionWritesNothing(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	var events []json.RawMessage
	for i := range 5 {
		events = append(events, roomEvent(fmt.Sprintf("$e%d", i), "@alice:example.org", encryptText(t, alice, testRoom, fmt.Sprint(i))))
	}
	decryptAll := func() {
		t.Helper()
		results, err := bob.m.DecryptRoomEvents(ctx, testRoom, events)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			if r.Err != nil || r.Event.MessageIndex != uint32(i) {
				t.Fatalf("event %d: %+v", i, r)
			}
		}
	}
	decryptAll()
	before := storeDump(t, bob.path)
	decryptAll()
	for _, ev := range events[1:4] {
		if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, ev); err != nil {
			t.Fatal(err)
		}
	}
	if before != storeDump(t, bob.path) {
		t.Fatal("decrypting the same events again changed the store")
	}
	// A new event moves the session on, and it is written.
	next := roomEvent("$e5", "@alice:example.org", encryptText(t, alice, testRoom, "5"))
	if _, err := bob.m.DecryptRoomEvents(ctx, testRoom, []json.RawMessage{events[0], next}); err != nil {
		t.Fatal(err)
	}
	if latest := storedSession(t, bob).Session.LatestIndex(); latest != 5 {
		t.Fatalf("stored latest index %d after index 5", latest)
	}
}

// An imported session becomes verified by its first decryption even when
// that does not move its latest ratchet (a message at its first known
// index), and that is stored.
func TestRoomImportedSessionVerifiedIsStored(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	first := roomEvent("$e0", "@alice:example.org", encryptText(t, alice, testRoom, "0"))
	rec := storedSession(t, bob)
	bob.update(t, func(tx *cryptostore.Tx) error {
		imported, err := megolm.ImportInboundGroupSession(rec.Session.ExportAtFirstKnownIndex())
		if err != nil {
			return err
		}
		rec.Session, rec.Forwarded = imported, true
		return tx.UpdateInboundGroupSession(rec)
	})
	if rec = storedSession(t, bob); rec.Session.SigningKeyVerified() || rec.Session.LatestIndex() != 0 {
		t.Fatal("the imported session is verified already")
	}
	if _, err := bob.m.DecryptRoomEvents(ctx, testRoom, []json.RawMessage{first}); err != nil {
		t.Fatal(err)
	}
	if rec := storedSession(t, bob); !rec.Session.SigningKeyVerified() || rec.Session.LatestIndex() != 0 {
		t.Fatalf("after its first decryption: verified %t, latest %d", rec.Session.SigningKeyVerified(), rec.Session.LatestIndex())
	}
}

// A replay inside a batch names the batch's own earlier event, and the
// replaying event does not move the session; a later batch sees the uses the
// first one recorded.
func TestRoomBatchReplays(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	c0 := encryptText(t, alice, testRoom, "0")
	c1 := encryptText(t, alice, testRoom, "1")
	results, err := bob.m.DecryptRoomEvents(ctx, testRoom, []json.RawMessage{
		roomEvent("$a", "@alice:example.org", c0), roomEvent("$b", "@alice:example.org", c0),
		roomEvent("$c", "@alice:example.org", c1), roomEvent("$c", "@alice:example.org", c1),
	})
	if err != nil {
		t.Fatal(err)
	}
	var replay *cryptostore.ReplayError
	if results[0].Err != nil || !errors.As(results[1].Err, &replay) || replay.FirstEvent != "$a" ||
		replay.Index != 0 || results[2].Err != nil || results[3].Err != nil {
		t.Fatalf("results %+v, %+v, %+v, %+v", results[0], results[1], results[2], results[3])
	}
	before := storeDump(t, bob.path)
	results, err = bob.m.DecryptRoomEvents(ctx, testRoom, []json.RawMessage{roomEvent("$d", "@alice:example.org", c1)})
	if err != nil || !errors.As(results[0].Err, &replay) || replay.FirstEvent != "$c" || replay.Index != 1 {
		t.Fatalf("replay in a later batch: %v, %+v", err, results[0])
	}
	if before != storeDump(t, bob.path) {
		t.Fatal("a batch of one replay changed the store")
	}
}

// storedSession reads Bob's one session of the test room from the store.
func storedSession(t testing.TB, p *roomPeer) *cryptostore.InboundGroupSessionRecord {
	t.Helper()
	var rec *cryptostore.InboundGroupSessionRecord
	err := p.m.store.View(context.Background(), "read", func(tx *cryptostore.Tx) error {
		n := 0
		err := tx.InboundGroupSessions(func(roomID, _ string) bool { return roomID == testRoom },
			func(r *cryptostore.InboundGroupSessionRecord) error {
				rec, n = r, n+1
				return nil
			})
		if err == nil && n != 1 {
			err = fmt.Errorf("%d sessions in the room", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
