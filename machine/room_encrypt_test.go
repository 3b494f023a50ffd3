package machine

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
)

func TestEncryptRoomEventNeedsASentKey(t *testing.T) {
	ctx := context.Background()
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	bob := newRoomPeer(t, "@bob:example.org", "BOB")
	roomConnect(t, alice, bob)
	before := storeDump(t, alice.path)
	if _, err := alice.m.EncryptRoomEvent(ctx, testRoom, "m.room.message", json.RawMessage(`{}`)); !errors.Is(err, ErrRoomKeyNotShared) {
		t.Fatalf("no session: %v", err)
	}
	if before != storeDump(t, alice.path) {
		t.Fatal("a refused encryption changed the store")
	}
	reqs, err := alice.m.ShareRoomKey(ctx, testRoom, []string{"@bob:example.org"}, EncryptionSettings{})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("share: %d requests, %v", len(reqs), err)
	}
	var notSent *RoomKeyNotSentError
	if _, err := alice.m.EncryptRoomEvent(ctx, testRoom, "m.room.message", json.RawMessage(`{}`)); !errors.As(err, &notSent) || notSent.Pending != 1 || !errors.Is(err, ErrRoomKeyNotSent) {
		t.Fatalf("unsent key: %v", err)
	}
	markSent(t, alice, reqs)
	if _, err := alice.m.EncryptRoomEvent(ctx, testRoom, "m.room.message", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptRoomEventRefusesBadContent(t *testing.T) {
	ctx := context.Background()
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	share(t, alice, testRoom, nil, EncryptionSettings{})
	before := storeDump(t, alice.path)
	for _, c := range []struct{ typ, content string }{
		{"", `{}`},
		{"m.room.message", `[]`},
		{"m.room.message", `"text"`},
		{"m.room.message", `{"body":`},
		{"m.room.message", ``},
		{"m.room.message", `{"body":"` + strings.Repeat("a", MaxEventSize) + `"}`},
	} {
		if _, err := alice.m.EncryptRoomEvent(ctx, testRoom, c.typ, json.RawMessage(c.content)); !errors.Is(err, ErrInvalidRoomContent) {
			t.Errorf("%q %.20q: %v", c.typ, c.content, err)
		}
	}
	if before != storeDump(t, alice.path) {
		t.Fatal("refused content changed the store")
	}
}

// Invariant 6: the advanced ratchet is committed before the ciphertext is
// returned, so another process on the same store continues at the next index
// and no index is ever used twice.
func TestInvariant6RoomKeyRatchetPersistedBeforeSend(t *testing.T) {
	ctx := context.Background()
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	share(t, alice, testRoom, nil, EncryptionSettings{})
	nse, err := Open(ctx, openStore(t, alice.path, "nse"), "@alice:example.org", "ALICE", Options{})
	if err != nil {
		t.Fatal(err)
	}
	third := openStore(t, alice.path, "share")
	var sessionID string
	seen := map[uint32]bool{}
	for i := range 6 {
		m := alice.m
		if i%2 == 1 {
			m = nse
		}
		content, err := m.EncryptRoomEvent(ctx, testRoom, "m.room.message", json.RawMessage(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		var c megolmContent
		json.Unmarshal(content, &c)
		if c.Algorithm != MegolmAlgorithm || c.SenderKey != alice.m.ids.Curve25519.String() || c.DeviceID != "ALICE" {
			t.Fatalf("content %s", content)
		}
		sessionID = c.SessionID
		// Read the committed state as a third process would.
		var rec *cryptostore.OutboundGroupSessionRecord
		third.View(ctx, "read", func(tx *cryptostore.Tx) error {
			rec, err = tx.OutboundGroupSession(testRoom)
			return err
		})
		if rec.Session.MessageIndex() != uint32(i+1) || rec.MessageCount != i+1 {
			t.Fatalf("after message %d: index %d, count %d", i, rec.Session.MessageIndex(), rec.MessageCount)
		}
		raw, _ := b64.Decode(c.Ciphertext)
		d, err := alice.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$"+string(rune('a'+i)), "@alice:example.org", content))
		if err != nil || seen[d.MessageIndex] || len(raw) == 0 {
			t.Fatalf("message %d: index %v reused, %v", i, d, err)
		}
		seen[d.MessageIndex] = true
	}
	if sessionID == "" || len(seen) != 6 {
		t.Fatal("messages missing")
	}
}

// A failed commit returns no ciphertext and leaves the ratchet where it was.
func TestEncryptRoomEventFailedCommitReturnsNothing(t *testing.T) {
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	share(t, alice, testRoom, nil, EncryptionSettings{})
	before := storeDump(t, alice.path)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	if out, err := alice.m.EncryptRoomEvent(ctx, testRoom, "m.room.message", json.RawMessage(`{}`)); err == nil || out != nil {
		t.Fatalf("encrypted under an expired context: %v", err)
	}
	if before != storeDump(t, alice.path) {
		t.Fatal("the store changed")
	}
	if outboundSession(t, alice, testRoom).Session.MessageIndex() != 0 {
		t.Fatal("the ratchet moved")
	}
}
