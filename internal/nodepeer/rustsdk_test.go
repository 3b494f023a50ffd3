package nodepeer

import (
	"encoding/json"
	"errors"
	"testing"
)

type outgoingRequest struct {
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

type deviceKeys struct {
	UserID     string            `json:"user_id"`
	DeviceID   string            `json:"device_id"`
	Algorithms []string          `json:"algorithms"`
	Keys       map[string]string `json:"keys"`
}

// TestRustSDKInitialKeysUpload starts an OlmMachine and checks that the first
// thing it asks of the homeserver is to upload its device keys.
func TestRustSDKInitialKeysUpload(t *testing.T) {
	p := Start(t, "rustsdk.mjs")
	var m handle
	p.MustCall("machine.initialize", map[string]any{"user_id": "@bob:example.org", "device_id": "BOBDEVICE"}, &m)
	var keys identityKeys
	p.MustCall("machine.identity_keys", map[string]any{"machine": m}, &keys)

	var requests []outgoingRequest
	p.MustCall("machine.outgoing_requests", map[string]any{"machine": m}, &requests)
	if len(requests) == 0 || requests[0].Type != "KeysUpload" {
		t.Fatalf("first outgoing requests %+v, want a KeysUpload first", requests)
	}
	var upload struct {
		DeviceKeys  deviceKeys                 `json:"device_keys"`
		OneTimeKeys map[string]json.RawMessage `json:"one_time_keys"`
	}
	if err := json.Unmarshal(requests[0].Body, &upload); err != nil {
		t.Fatal(err)
	}
	dk := upload.DeviceKeys
	if dk.UserID != "@bob:example.org" || dk.DeviceID != "BOBDEVICE" {
		t.Fatalf("device_keys for %s/%s", dk.UserID, dk.DeviceID)
	}
	if dk.Keys["curve25519:BOBDEVICE"] != keys.Curve25519 || dk.Keys["ed25519:BOBDEVICE"] != keys.Ed25519 {
		t.Fatalf("device_keys.keys %v, identity keys %+v", dk.Keys, keys)
	}
	if len(upload.OneTimeKeys) == 0 {
		t.Fatal("initial upload carries no one-time keys")
	}

	response := map[string]any{"one_time_key_counts": map[string]int{"signed_curve25519": len(upload.OneTimeKeys)}}
	p.MustCall("machine.mark_request_as_sent",
		map[string]any{"machine": m, "id": requests[0].ID, "type": "KeysUpload", "response": response}, nil)
	p.MustCall("machine.outgoing_requests", map[string]any{"machine": m}, &requests)
	for _, r := range requests {
		if r.Type == "KeysUpload" {
			t.Fatalf("keys upload still pending after it was marked as sent: %+v", requests)
		}
	}
}

// TestRustSDKDecryptsLibolmGroupMessage hands a libolm Megolm session to an
// OlmMachine as an exported room key and decrypts a libolm message with it:
// both peers, their error codes and the key-export calls working together.
func TestRustSDKDecryptsLibolmGroupMessage(t *testing.T) {
	olm := Start(t, "libolm.cjs")
	sdk := Start(t, "rustsdk.mjs")
	const room = "!room:example.org"

	alice := newAccount(olm)
	var aliceKeys identityKeys
	olm.MustCall("account.identity_keys", map[string]any{"account": alice}, &aliceKeys)
	var out, in handle
	olm.MustCall("outbound_group.create", nil, &out)
	var sessionKey, sessionID string
	olm.MustCall("outbound_group.session_key", map[string]any{"session": out}, &sessionKey)
	olm.MustCall("outbound_group.session_id", map[string]any{"session": out}, &sessionID)
	olm.MustCall("inbound_group.create", map[string]any{"session_key": sessionKey}, &in)
	var exported string
	olm.MustCall("inbound_group.export_session", map[string]any{"session": in, "message_index": 0}, &exported)

	plaintext, err := json.Marshal(map[string]any{
		"type":    "m.room.message",
		"room_id": room,
		"content": map[string]any{"msgtype": "m.text", "body": "hello from libolm"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ciphertext string
	olm.MustCall("outbound_group.encrypt", map[string]any{"session": out, "plaintext": string(plaintext)}, &ciphertext)
	event := map[string]any{
		"type": "m.room.encrypted", "sender": "@alice:example.org", "event_id": "$event1",
		"origin_server_ts": 1, "room_id": room,
		"content": map[string]any{
			"algorithm": "m.megolm.v1.aes-sha2", "sender_key": aliceKeys.Curve25519,
			"session_id": sessionID, "ciphertext": ciphertext, "device_id": "ALICEDEVICE",
		},
	}

	var bob handle
	sdk.MustCall("machine.initialize", map[string]any{"user_id": "@bob:example.org", "device_id": "BOBDEVICE"}, &bob)
	decrypt := map[string]any{"machine": bob, "room_id": room, "event": event}
	err = sdk.Call("machine.decrypt_room_event", decrypt, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Code != "MissingRoomKey" {
		t.Fatalf("decrypt without the room key: got %v, want MissingRoomKey", err)
	}

	roomKey := map[string]any{
		"algorithm": "m.megolm.v1.aes-sha2", "room_id": room, "sender_key": aliceKeys.Curve25519,
		"session_id": sessionID, "session_key": exported,
		"sender_claimed_keys": map[string]string{"ed25519": aliceKeys.Ed25519}, "forwarding_curve25519_key_chain": []string{},
	}
	// Round-trip the key through the passphrase-protected export file first.
	var file string
	sdk.MustCall("export.encrypt", map[string]any{"keys": []any{roomKey}, "passphrase": "pass", "rounds": 1000}, &file)
	var keys []json.RawMessage
	sdk.MustCall("export.decrypt", map[string]any{"file": file, "passphrase": "pass"}, &keys)
	if len(keys) != 1 {
		t.Fatalf("export file holds %d keys, want 1", len(keys))
	}
	var counts struct {
		Imported int `json:"imported_count"`
		Total    int `json:"total_count"`
	}
	sdk.MustCall("machine.import_exported_room_keys", map[string]any{"machine": bob, "keys": keys}, &counts)
	if counts.Imported != 1 || counts.Total != 1 {
		t.Fatalf("import counts %+v, want 1 of 1", counts)
	}

	var decrypted struct {
		Event struct {
			Type    string `json:"type"`
			Content struct {
				Body string `json:"body"`
			} `json:"content"`
		} `json:"event"`
		Sender              string `json:"sender"`
		SenderCurve25519Key string `json:"sender_curve25519_key"`
	}
	sdk.MustCall("machine.decrypt_room_event", decrypt, &decrypted)
	if decrypted.Event.Type != "m.room.message" || decrypted.Event.Content.Body != "hello from libolm" {
		t.Fatalf("decrypted event %+v", decrypted.Event)
	}
	if decrypted.Sender != "@alice:example.org" || decrypted.SenderCurve25519Key != aliceKeys.Curve25519 {
		t.Fatalf("decrypted sender %s key %s", decrypted.Sender, decrypted.SenderCurve25519Key)
	}

	var reexported []map[string]any
	sdk.MustCall("machine.export_room_keys", map[string]any{"machine": bob, "room_id": room}, &reexported)
	if len(reexported) != 1 || reexported[0]["session_id"] != sessionID {
		t.Fatalf("machine exports %v, want the one imported session", reexported)
	}
}
