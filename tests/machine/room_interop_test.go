package machine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/machine"
)

const roomInteropRoom = "!rooms:example.org"

// roomRustDecrypted is a room event as matrix-rust-sdk decrypted it.
type roomRustDecrypted struct {
	Event struct {
		Type    string `json:"type"`
		Content struct {
			Body string `json:"body"`
		} `json:"content"`
	} `json:"event"`
	Sender               string `json:"sender"`
	SenderDevice         string `json:"sender_device"`
	SenderCurve25519Key  string `json:"sender_curve25519_key"`
	SenderClaimedEd25519 string `json:"sender_claimed_ed25519_key"`
}

// roomSetup starts xolm's Alice and matrix-rust-sdk's Bob, each knowing the
// other's device keys and holding an Olm session with the other from a
// claimed one-time key, all through the homeserver.
func roomSetup(t *testing.T) (*keysHomeserver, *keysXolm, *keysRust) {
	t.Helper()
	ctx := context.Background()
	hs, alice, bob := keysSetup(t)
	if err := alice.UpdateTrackedUsers(ctx, []string{keysBob}); err != nil {
		t.Fatal(err)
	}
	hs.Flush(alice.Machine)
	if _, err := alice.GetMissingSessions(ctx, []string{keysBob}); err != nil {
		t.Fatal(err)
	}
	hs.Flush(alice.Machine)
	bob.peer.MustCall("machine.update_tracked_users", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, nil)
	hs.flushRust(bob)
	var claim *keysRustRequest
	bob.peer.MustCall("machine.get_missing_sessions", map[string]any{"machine": bob.handle, "users": []string{keysAlice}}, &claim)
	if claim == nil {
		t.Fatal("matrix-rust-sdk claims no key of xolm's")
	}
	hs.markRust(bob, *claim)
	return hs, alice, bob
}

// roomXolmSend shares Alice's room key as needed (rotating by settings), has
// Bob receive it, and encrypts one message.
func roomXolmSend(t *testing.T, hs *keysHomeserver, alice *keysXolm, bob *keysRust, settings machine.EncryptionSettings, body string) json.RawMessage {
	t.Helper()
	ctx := context.Background()
	reqs, err := alice.ShareRoomKey(ctx, roomInteropRoom, []string{keysBob}, settings)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) > 0 {
		hs.Flush(alice.Machine)
		for _, p := range hs.syncRust(bob, nil) {
			if p.Type != "Decrypted" || p.Event.Type != machine.EventRoomKey {
				t.Fatalf("matrix-rust-sdk made of xolm's room key: %+v", p)
			}
		}
	}
	content, err := alice.EncryptRoomEvent(ctx, roomInteropRoom, "m.room.message", json.RawMessage(fmt.Sprintf(`{"msgtype":"m.text","body":%q}`, body)))
	if err != nil {
		t.Fatal(err)
	}
	return content
}

// roomRustSend shares Bob's room key as needed, has Alice receive it, and
// encrypts one message.
func roomRustSend(t *testing.T, hs *keysHomeserver, alice *keysXolm, bob *keysRust, rotateAfter int, body string) json.RawMessage {
	t.Helper()
	var shares []keysRustRequest
	bob.peer.MustCall("machine.share_room_key", map[string]any{"machine": bob.handle, "room_id": roomInteropRoom,
		"users": []string{keysAlice}, "settings": map[string]any{"rotation_period_messages": rotateAfter}}, &shares)
	for _, r := range shares {
		hs.markRust(bob, r)
	}
	if len(shares) > 0 {
		res, err := alice.ReceiveSyncChanges(context.Background(), machine.SyncChanges{ToDeviceEvents: hs.Take(keysAlice, keysAliceDevice)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || r.RoomKey == nil || !r.RoomKey.Stored {
				t.Fatalf("xolm made of matrix-rust-sdk's room key: %+v", r)
			}
		}
	}
	var content json.RawMessage
	bob.peer.MustCall("machine.encrypt_room_event", map[string]any{"machine": bob.handle, "room_id": roomInteropRoom,
		"type": "m.room.message", "content": map[string]string{"msgtype": "m.text", "body": body}}, &content)
	return content
}

func roomInteropEvent(id, sender string, content json.RawMessage) json.RawMessage {
	ev, _ := json.Marshal(map[string]any{"type": "m.room.encrypted", "event_id": id, "sender": sender,
		"origin_server_ts": 1_700_000_000_000, "room_id": roomInteropRoom, "content": content})
	return ev
}

// xolm and matrix-rust-sdk talk in one room at once, each rotating its
// Megolm session every 40 messages: xolm's ShareRoomKey and EncryptRoomEvent
// against Rust's decryption, Rust's room keys and messages against xolm's
// ReceiveSyncChanges and DecryptRoomEvent. 250 messages each way, every one
// decrypted with the right sender, device, keys and message index.
func TestRoomInteropBothWaysWithRotation(t *testing.T) {
	ctx := context.Background()
	hs, alice, bob := roomSetup(t)
	var bobKeys keysIdentity
	bob.peer.MustCall("machine.identity_keys", map[string]any{"machine": bob.handle}, &bobKeys)
	const rotateAfter = 40
	settings := machine.EncryptionSettings{RotationMessages: rotateAfter}
	sessions := map[string]bool{}
	for i := range 250 {
		body := fmt.Sprint("from xolm ", i)
		content := roomXolmSend(t, hs, alice, bob, settings, body)
		var got roomRustDecrypted
		bob.peer.MustCall("machine.decrypt_room_event", map[string]any{"machine": bob.handle, "room_id": roomInteropRoom,
			"event": roomInteropEvent(fmt.Sprintf("$x%d", i), keysAlice, content)}, &got)
		if got.Event.Content.Body != body || got.Sender != keysAlice || got.SenderDevice != keysAliceDevice ||
			got.SenderCurve25519Key != alice.IdentityKeys().Curve25519.String() ||
			got.SenderClaimedEd25519 != alice.IdentityKeys().Ed25519.String() {
			t.Fatalf("matrix-rust-sdk decrypted xolm's message %d as %+v", i, got)
		}

		body = fmt.Sprint("from rust ", i)
		content = roomRustSend(t, hs, alice, bob, rotateAfter, body)
		d, err := alice.DecryptRoomEvent(ctx, roomInteropRoom, roomInteropEvent(fmt.Sprintf("$r%d", i), keysBob, content))
		if err != nil {
			t.Fatalf("xolm cannot decrypt matrix-rust-sdk's message %d: %v", i, err)
		}
		var c struct{ Body string }
		json.Unmarshal(d.Content, &c)
		if c.Body != body || d.MessageIndex != uint32(i%rotateAfter) || d.SenderKey != bobKeys.Curve25519 ||
			d.ClaimedEd25519 != bobKeys.Ed25519 || d.SenderDevice == nil || d.SenderDevice.DeviceID != keysBobDevice || d.Forwarded {
			t.Fatalf("xolm decrypted matrix-rust-sdk's message %d as %+v", i, d)
		}
		sessions[d.SessionID] = true
	}
	if want := (250 + rotateAfter - 1) / rotateAfter; len(sessions) != want {
		t.Fatalf("matrix-rust-sdk used %d sessions, want %d", len(sessions), want)
	}
}

// A key-export file made by xolm's ExportRoomKeys is read by
// matrix-rust-sdk, whose imported key then decrypts xolm's message; a file
// made by matrix-rust-sdk is read by ImportRoomKeys, whose key decrypts
// Rust's message in a device that never got the room key.
func TestRoomInteropKeyExportFiles(t *testing.T) {
	ctx := context.Background()
	hs, alice, bob := roomSetup(t)
	const passphrase = "interop passphrase"
	xolmMessage := roomXolmSend(t, hs, alice, bob, machine.EncryptionSettings{}, "exported by xolm")
	rustMessage := roomRustSend(t, hs, alice, bob, 100, "exported by rust")

	// xolm → Rust: a second Rust device, which never got the key.
	file, err := alice.ExportRoomKeys(ctx, passphrase, 1000, func(room, _ string) bool { return room == roomInteropRoom })
	if err != nil {
		t.Fatal(err)
	}
	peer := nodepeer.Start(t, "rustsdk.mjs")
	carol := newKeysRust(t, peer, "@carol:example.org", "CAROL")
	var keys []json.RawMessage
	peer.MustCall("export.decrypt", map[string]any{"file": string(file), "passphrase": passphrase}, &keys)
	var counts struct {
		Imported int `json:"imported_count"`
		Total    int `json:"total_count"`
	}
	peer.MustCall("machine.import_exported_room_keys", map[string]any{"machine": carol.handle, "keys": keys}, &counts)
	// Alice's file holds her own session and Bob's, both of this room.
	if counts.Imported != 2 || counts.Total != 2 {
		t.Fatalf("matrix-rust-sdk imported %d of %d keys", counts.Imported, counts.Total)
	}
	var got roomRustDecrypted
	peer.MustCall("machine.decrypt_room_event", map[string]any{"machine": carol.handle, "room_id": roomInteropRoom,
		"event": roomInteropEvent("$xolm", keysAlice, xolmMessage)}, &got)
	if got.Event.Content.Body != "exported by xolm" || got.SenderCurve25519Key != alice.IdentityKeys().Curve25519.String() {
		t.Fatalf("matrix-rust-sdk decrypted with xolm's exported key: %+v", got)
	}

	// Rust → xolm: a second xolm device imports Bob's export.
	var rustKeys []json.RawMessage
	bob.peer.MustCall("machine.export_room_keys", map[string]any{"machine": bob.handle, "room_id": roomInteropRoom}, &rustKeys)
	var rustFile string
	bob.peer.MustCall("export.encrypt", map[string]any{"keys": rustKeys, "passphrase": passphrase, "rounds": 1000}, &rustFile)
	dave := newKeysXolm(t, keysAlice, "DAVE")
	imported, total, err := dave.ImportRoomKeys(ctx, []byte(rustFile), passphrase)
	if err != nil || imported != total || total != len(rustKeys) || total == 0 {
		t.Fatalf("xolm imported %d of %d (%d exported): %v", imported, total, len(rustKeys), err)
	}
	d, err := dave.DecryptRoomEvent(ctx, roomInteropRoom, roomInteropEvent("$rust", keysBob, rustMessage))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Body string }
	json.Unmarshal(d.Content, &c)
	if c.Body != "exported by rust" || !d.Forwarded || d.SenderDevice != nil {
		t.Fatalf("xolm decrypted with matrix-rust-sdk's exported key: %+v", d)
	}
}
