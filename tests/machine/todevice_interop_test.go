package machine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine"
)

const toDeviceRoom = "!todevice:example.org"

// toDeviceSetup starts xolm's Alice and matrix-rust-sdk's Bob with their keys
// uploaded; each has queried the other's device keys, and Bob has claimed one
// of Alice's one-time keys, so his next to-device message to her is a
// pre-key message.
func toDeviceSetup(t *testing.T) (*keysHomeserver, *keysXolm, *keysRust, keysIdentity) {
	t.Helper()
	hs, alice, bob := keysSetup(t)
	if err := alice.UpdateTrackedUsers(context.Background(), []string{keysBob}); err != nil {
		t.Fatal(err)
	}
	hs.Flush(alice.Machine)
	bob.peer.MustCall("machine.update_tracked_users", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, nil)
	hs.flushRust(bob)
	var claim *keysRustRequest
	bob.peer.MustCall("machine.get_missing_sessions", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, &claim)
	if claim == nil || claim.Type != "KeysClaim" {
		t.Fatalf("matrix-rust-sdk does not claim xolm's key: %+v", claim)
	}
	hs.markRust(bob, *claim)
	var ids keysIdentity
	bob.peer.MustCall("machine.identity_keys", map[string]any{"machine": bob.handle}, &ids)
	return hs, alice, bob, ids
}

// toDeviceSync hands Alice her queued to-device events.
func toDeviceSync(t *testing.T, hs *keysHomeserver, alice *keysXolm) ([]json.RawMessage, []machine.ToDeviceResult) {
	t.Helper()
	events := hs.Take(keysAlice, keysAliceDevice)
	res, err := alice.ReceiveSyncChanges(context.Background(), machine.SyncChanges{ToDeviceEvents: events})
	if err != nil {
		t.Fatal(err)
	}
	return events, res
}

// toDeviceFromRust has Bob encrypt a to-device event for Alice and queues it.
func toDeviceFromRust(t *testing.T, hs *keysHomeserver, bob *keysRust, eventType, content string) {
	t.Helper()
	var enc json.RawMessage
	bob.peer.MustCall("machine.encrypt_to_device", map[string]any{"machine": bob.handle, "user_id": keysAlice,
		"device_id": keysAliceDevice, "type": eventType, "content": json.RawMessage(content)}, &enc)
	event, _ := json.Marshal(map[string]any{"type": machine.EventRoomEncrypted, "sender": keysBob, "content": enc})
	hs.Deliver(keysAlice, keysAliceDevice, event)
}

// fromBob checks that a result is a to-device event Bob's device sent and
// xolm decrypted and checked against his queried keys.
func fromBob(t *testing.T, r machine.ToDeviceResult, bob keysIdentity, eventType string) {
	t.Helper()
	if r.Err != nil || !r.Encrypted || r.Type != eventType || r.Sender != keysBob || r.SenderDevice != keysBobDevice ||
		r.SenderKey != bob.Curve25519 || r.SenderEd25519 != bob.Ed25519 {
		t.Fatalf("want %s from %s: %+v", eventType, keysBob, r)
	}
}

// The real matrix-rust-sdk machine claims one of xolm's one-time keys and
// shares a room key over the new Olm session, then sends 500 room messages:
// xolm decrypts the pre-key message (checking Rust's sender_device_keys),
// stores the room key with Rust's device keys, reports a second delivery as
// a duplicate, and decrypts every room message with the key.
func TestToDeviceInteropRustSharesRoomKey(t *testing.T) {
	ctx := context.Background()
	hs, alice, bob, bobKeys := toDeviceSetup(t)
	var shares []keysRustRequest
	bob.peer.MustCall("machine.share_room_key", map[string]any{"machine": bob.handle, "room_id": toDeviceRoom,
		"users": []string{keysAlice}, "settings": map[string]any{"rotation_period_messages": 1000}}, &shares)
	for _, r := range shares {
		hs.markRust(bob, r)
	}
	events, res := toDeviceSync(t, hs, alice)
	if len(res) != 1 {
		t.Fatalf("%d to-device events", len(res))
	}
	r := res[0]
	fromBob(t, r, bobKeys, machine.EventRoomKey)
	if r.RoomKey == nil || !r.RoomKey.Stored || r.RoomKey.RoomID != toDeviceRoom || r.RoomKey.Forwarded {
		t.Fatalf("room key %+v", r.RoomKey)
	}
	again, err := alice.ReceiveSyncChanges(ctx, machine.SyncChanges{ToDeviceEvents: events})
	if err != nil || !errors.Is(again[0].Err, machine.ErrDuplicateOlmMessage) {
		t.Fatalf("the same event again: %+v %v", again, err)
	}

	for i := range 500 {
		var content json.RawMessage
		bob.peer.MustCall("machine.encrypt_room_event", map[string]any{"machine": bob.handle, "room_id": toDeviceRoom,
			"type": "m.room.message", "content": map[string]any{"msgtype": "m.text", "body": fmt.Sprint("message ", i)}}, &content)
		ev, _ := json.Marshal(map[string]any{"type": machine.EventRoomEncrypted, "sender": keysBob, "room_id": toDeviceRoom,
			"event_id": fmt.Sprintf("$ev%d", i), "origin_server_ts": 1_700_000_000_000 + i, "content": content})
		dec, err := alice.DecryptRoomEvent(ctx, toDeviceRoom, ev)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var c struct{ Body string }
		json.Unmarshal(dec.Content, &c)
		if c.Body != fmt.Sprint("message ", i) || dec.MessageIndex != uint32(i) || dec.SessionID != r.RoomKey.SessionID ||
			dec.SenderKey != bobKeys.Curve25519 || dec.ClaimedEd25519 != bobKeys.Ed25519 || dec.Forwarded {
			t.Fatalf("message %d: %+v", i, dec)
		}
	}
}

// xolm loses its Olm session with the Rust device (as a process that wrote
// a stale copy would): Rust's next message is undecryptable. xolm claims a
// key of Rust's exactly once and sends one m.dummy over the new session,
// which Rust decrypts; Rust then writes on that session and xolm decrypts
// again. Later undecryptable messages within the hour claim nothing more.
func TestToDeviceInteropUnwedge(t *testing.T) {
	ctx := context.Background()
	hs, alice, bob, bobKeys := toDeviceSetup(t)
	toDeviceFromRust(t, hs, bob, "m.test", `{"n":1}`)
	_, res := toDeviceSync(t, hs, alice)
	fromBob(t, res[0], bobKeys, "m.test")

	err := alice.Store().Update(ctx, "lose sessions", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(bobKeys.Curve25519)
		for _, r := range recs {
			if err := tx.ArchiveOlmSession(r.SenderKey, r.Session.ID()); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	toDeviceFromRust(t, hs, bob, "m.test", `{"n":2}`)
	toDeviceFromRust(t, hs, bob, "m.test", `{"n":3}`)
	_, res = toDeviceSync(t, hs, alice)
	var wedged *machine.SessionWedgedError
	if len(res) != 2 || !errors.As(res[0].Err, &wedged) || wedged.Unwedging != machine.UnwedgeClaimQueued ||
		!errors.As(res[1].Err, &wedged) || wedged.Unwedging != machine.UnwedgeRateLimited {
		t.Fatalf("undecryptable messages: %+v", res)
	}
	claimedBefore := len(hs.Claimed())
	hs.Flush(alice.Machine) // the claim, then the m.dummy
	if len(hs.Claimed()) != claimedBefore+1 {
		t.Fatalf("%d keys claimed to unwedge", len(hs.Claimed())-claimedBefore)
	}
	got := hs.syncRust(bob, nil)
	if len(got) != 1 || got[0].Type != "Decrypted" || got[0].Event.Type != machine.EventDummy || got[0].Event.Sender != keysAlice {
		t.Fatalf("matrix-rust-sdk made of the m.dummy: %+v", got)
	}

	for i := range 3 {
		toDeviceFromRust(t, hs, bob, "m.test", fmt.Sprintf(`{"after":%d}`, i))
	}
	_, res = toDeviceSync(t, hs, alice)
	for _, r := range res {
		fromBob(t, r, bobKeys, "m.test")
	}
	hs.Flush(alice.Machine)
	if len(hs.Claimed()) != claimedBefore+1 || hs.Pending(keysBob, keysBobDevice) != 0 {
		t.Fatalf("after recovery: %d claims, %d to-device messages", len(hs.Claimed())-claimedBefore,
			hs.Pending(keysBob, keysBobDevice))
	}
}
