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

// TestRustSDKMachinesShareARoom runs two OlmMachines through key upload, key
// query, one-time key claim, room key share over Olm and a Megolm message,
// with the test playing their homeserver.
func TestRustSDKMachinesShareARoom(t *testing.T) {
	p := Start(t, "rustsdk.mjs")
	hs := newHomeserver(t)
	alice := hs.login(p, "@alice:example.org", "ALICEDEVICE")
	bob := hs.login(p, "@bob:example.org", "BOBDEVICE")
	const room = "!room:example.org"

	p.MustCall("machine.update_tracked_users", map[string]any{"machine": alice.machine, "users": []string{bob.user}}, nil)
	p.MustCall("machine.update_tracked_users", map[string]any{"machine": bob.machine, "users": []string{alice.user}}, nil)
	hs.flush(alice)
	hs.flush(bob)

	var claim *outgoingRequest
	p.MustCall("machine.get_missing_sessions", map[string]any{"machine": alice.machine, "users": []string{bob.user}}, &claim)
	if claim == nil || claim.Type != "KeysClaim" {
		t.Fatalf("missing sessions request %+v, want a KeysClaim", claim)
	}
	p.MustCall("machine.mark_request_as_sent", map[string]any{
		"machine": alice.machine, "id": claim.ID, "type": claim.Type, "response": hs.answer(alice, claim.Type, "", claim.Body),
	}, nil)

	var shares []struct {
		outgoingRequest
		EventType string `json:"event_type"`
	}
	p.MustCall("machine.share_room_key", map[string]any{"machine": alice.machine, "room_id": room, "users": []string{bob.user}}, &shares)
	if len(shares) == 0 {
		t.Fatal("sharing the room key produced no to-device requests")
	}
	for _, r := range shares {
		if r.Type != "ToDevice" || r.EventType != "m.room.encrypted" {
			t.Fatalf("share request %s %s, want an encrypted ToDevice", r.Type, r.EventType)
		}
		p.MustCall("machine.mark_request_as_sent", map[string]any{
			"machine": alice.machine, "id": r.ID, "type": r.Type, "response": hs.answer(alice, r.Type, r.EventType, r.Body),
		}, nil)
	}

	var aliceKeys identityKeys
	p.MustCall("machine.identity_keys", map[string]any{"machine": alice.machine}, &aliceKeys)
	processed := hs.sync(bob, nil)
	if len(processed) != 1 || processed[0].Type != "Decrypted" || processed[0].EncryptionInfo == nil {
		t.Fatalf("bob's sync processed %+v, want one decrypted event", processed)
	}
	var roomKey struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(processed[0].Event, &roomKey); err != nil {
		t.Fatal(err)
	}
	if info := processed[0].EncryptionInfo; roomKey.Type != "m.room_key" || info.Sender != alice.user ||
		info.SenderCurve25519Key != aliceKeys.Curve25519 {
		t.Fatalf("bob received %s from %s key %s", roomKey.Type, info.Sender, info.SenderCurve25519Key)
	}

	var content map[string]any
	p.MustCall("machine.encrypt_room_event", map[string]any{
		"machine": alice.machine, "room_id": room, "type": "m.room.message",
		"content": map[string]string{"msgtype": "m.text", "body": "hello bob"},
	}, &content)
	event := map[string]any{
		"type": "m.room.encrypted", "sender": alice.user, "event_id": "$event2",
		"origin_server_ts": 2, "room_id": room, "content": content,
	}
	var decrypted struct {
		Event struct {
			Content struct {
				Body string `json:"body"`
			} `json:"content"`
		} `json:"event"`
		SenderDevice string `json:"sender_device"`
	}
	p.MustCall("machine.decrypt_room_event", map[string]any{"machine": bob.machine, "room_id": room, "event": event}, &decrypted)
	if decrypted.Event.Content.Body != "hello bob" || decrypted.SenderDevice != alice.deviceID {
		t.Fatalf("bob decrypted %+v", decrypted)
	}

	// Olm the other way: Bob encrypts a to-device event for Alice's device.
	var device struct {
		Curve25519 string `json:"curve25519"`
	}
	p.MustCall("machine.get_device", map[string]any{"machine": bob.machine, "user_id": alice.user, "device_id": alice.deviceID}, &device)
	if device.Curve25519 != aliceKeys.Curve25519 {
		t.Fatalf("bob knows alice's device as %+v", device)
	}
	var sealed json.RawMessage
	p.MustCall("machine.encrypt_to_device", map[string]any{
		"machine": bob.machine, "user_id": alice.user, "device_id": alice.deviceID,
		"type": "org.example.ping", "content": map[string]int{"n": 1},
	}, &sealed)
	queued, err := json.Marshal(map[string]any{"type": "m.room.encrypted", "sender": bob.user, "content": sealed})
	if err != nil {
		t.Fatal(err)
	}
	hs.toDevice[alice.user+" "+alice.deviceID] = append(hs.toDevice[alice.user+" "+alice.deviceID], queued)
	processed = hs.sync(alice, nil)
	var ping struct {
		Type    string         `json:"type"`
		Content map[string]int `json:"content"`
	}
	if len(processed) != 1 || processed[0].Type != "Decrypted" {
		t.Fatalf("alice's sync processed %+v, want one decrypted event", processed)
	}
	if err := json.Unmarshal(processed[0].Event, &ping); err != nil {
		t.Fatal(err)
	}
	if ping.Type != "org.example.ping" || ping.Content["n"] != 1 {
		t.Fatalf("alice decrypted %s", processed[0].Event)
	}
}
