package keyexport

import (
	"crypto/rand"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/megolm"
)

// The live tests exchange key-export files with matrix-rust-sdk (through
// @matrix-org/matrix-sdk-crypto-wasm), whose file code Element also uses.
// Small round counts keep them fast; the format does not depend on them.
const liveRounds = 1000

type roomMessage struct {
	Type    string `json:"type"`
	RoomID  string `json:"room_id"`
	Content struct {
		MsgType string `json:"msgtype"`
		Body    string `json:"body"`
	} `json:"content"`
}

// TestRustSDKReadsOurFile has matrix-rust-sdk decrypt a file written here,
// import its session into an OlmMachine, and decrypt a room message that was
// encrypted here with that session.
func TestRustSDKReadsOurFile(t *testing.T) {
	p := nodepeer.Start(t, "rustsdk.mjs")
	const room = "!room:example.org"
	s, out := newSession(t, room)
	s.SharedHistory = true
	s.ForwardingCurve25519KeyChain = append(s.ForwardingCurve25519KeyChain, s.SenderKey)
	data, err := MarshalSessions([]ExportedSession{s})
	if err != nil {
		t.Fatal(err)
	}
	file, err := Encrypt(data, "pass phrase", liveRounds, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	var keys []json.RawMessage
	p.MustCall("export.decrypt", map[string]any{"file": string(file), "passphrase": "pass phrase"}, &keys)
	// matrix-rust-sdk re-encodes what it read: every field survived.
	reencoded, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalSessions(reencoded)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, []ExportedSession{s}) {
		t.Fatalf("matrix-rust-sdk read\n%+v\nwant %+v", back, s)
	}
	if err := p.Call("export.decrypt", map[string]any{"file": string(file), "passphrase": "pass phrasf"}, nil); err == nil {
		t.Fatal("matrix-rust-sdk decrypted with the wrong passphrase")
	}

	var machine string
	p.MustCall("machine.initialize", map[string]any{"user_id": "@bob:example.org", "device_id": "BOBDEVICE"}, &machine)
	var counts struct {
		Imported int `json:"imported_count"`
		Total    int `json:"total_count"`
	}
	p.MustCall("machine.import_exported_room_keys", map[string]any{"machine": machine, "keys": keys}, &counts)
	if counts.Imported != 1 || counts.Total != 1 {
		t.Fatalf("imported %d of %d", counts.Imported, counts.Total)
	}

	plaintext := `{"type":"m.room.message","room_id":"` + room + `","content":{"msgtype":"m.text","body":"from an exported key"}}`
	ciphertext, err := out.Encrypt([]byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	event := map[string]any{
		"type": "m.room.encrypted", "sender": "@alice:example.org", "event_id": "$1", "origin_server_ts": 1, "room_id": room,
		"content": map[string]any{
			"algorithm": MegolmAlgorithm, "sender_key": s.SenderKey.String(), "device_id": "ALICEDEVICE",
			"session_id": s.SessionID, "ciphertext": b64.Encode(ciphertext),
		},
	}
	var decrypted struct {
		Event roomMessage `json:"event"`
	}
	p.MustCall("machine.decrypt_room_event", map[string]any{"machine": machine, "room_id": room, "event": event}, &decrypted)
	if decrypted.Event.Content.Body != "from an exported key" {
		t.Fatalf("matrix-rust-sdk decrypted %+v", decrypted.Event)
	}
}

// TestWeReadRustSDKFile decrypts a file matrix-rust-sdk wrote of a session
// its OlmMachine created, imports the session, and decrypts a room message
// the machine encrypted with it.
func TestWeReadRustSDKFile(t *testing.T) {
	p := nodepeer.Start(t, "rustsdk.mjs")
	const room = "!room:example.org"
	var machine string
	p.MustCall("machine.initialize", map[string]any{"user_id": "@alice:example.org", "device_id": "ALICEDEVICE"}, &machine)
	// Sharing with no other device creates the outbound session alone.
	p.MustCall("machine.share_room_key", map[string]any{"machine": machine, "room_id": room, "users": []string{"@alice:example.org"}}, nil)
	var encrypted struct {
		SessionID  string `json:"session_id"`
		Ciphertext string `json:"ciphertext"`
	}
	p.MustCall("machine.encrypt_room_event", map[string]any{
		"machine": machine, "room_id": room, "type": "m.room.message",
		"content": map[string]any{"msgtype": "m.text", "body": "from matrix-rust-sdk"},
	}, &encrypted)

	var keys []json.RawMessage
	p.MustCall("machine.export_room_keys", map[string]any{"machine": machine, "room_id": room}, &keys)
	var file string
	p.MustCall("export.encrypt", map[string]any{"keys": keys, "passphrase": "pass phrase", "rounds": liveRounds}, &file)

	if _, err := Decrypt([]byte(file), "pass phrasf"); err != ErrBadMAC {
		t.Fatalf("wrong passphrase: %v", err)
	}
	data, err := Decrypt([]byte(file), "pass phrase")
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := UnmarshalSessions(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 || sessions[0].SessionID != encrypted.SessionID || sessions[0].RoomID != room {
		t.Fatalf("sessions %+v, want the one of session %s", sessions, encrypted.SessionID)
	}
	var identity struct {
		Curve25519 string `json:"curve25519"`
		Ed25519    string `json:"ed25519"`
	}
	p.MustCall("machine.identity_keys", map[string]any{"machine": machine}, &identity)
	if s := sessions[0]; s.SenderKey.String() != identity.Curve25519 || s.SenderClaimedKeys.Ed25519.String() != identity.Ed25519 {
		t.Fatalf("sender keys %s / %s, want the machine's %+v", s.SenderKey, s.SenderClaimedKeys.Ed25519, identity)
	}

	in, err := megolm.ImportInboundGroupSession(sessions[0].SessionKey)
	if err != nil {
		t.Fatal(err)
	}
	ciphertext, err := b64.Decode(encrypted.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	plaintext, index, err := in.Decrypt(ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	var msg roomMessage
	if err := json.Unmarshal(plaintext, &msg); err != nil {
		t.Fatal(err)
	}
	if index != 0 || msg.RoomID != room || msg.Content.Body != "from matrix-rust-sdk" {
		t.Fatalf("decrypted %+v at index %d", msg, index)
	}

	// Our re-export of the session is read back by matrix-rust-sdk as the
	// same room key.
	again, err := MarshalSessions(sessions)
	if err != nil {
		t.Fatal(err)
	}
	file2, err := Encrypt(again, "other", liveRounds, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var keys2 []map[string]any
	p.MustCall("export.decrypt", map[string]any{"file": string(file2), "passphrase": "other"}, &keys2)
	var original []map[string]any
	if err := json.Unmarshal(mustJSON(t, keys), &original); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys2, original) {
		t.Fatalf("matrix-rust-sdk reads our re-export as\n%v\nwant\n%v", keys2, original)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
