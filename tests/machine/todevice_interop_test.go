package machine_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/canonicaljson"
	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/machine"
)

// tdServer is just enough of a homeserver for the to-device interop tests:
// it keeps uploaded device and one-time keys, answers key queries and
// claims, and queues to-device events until the recipient syncs.
type tdServer struct {
	t        *testing.T
	devices  map[string]map[string]json.RawMessage            // user → device → signed device keys
	otks     map[string]map[string]map[string]json.RawMessage // user → device → key ID → signed key
	toDevice map[string][]json.RawMessage                     // "user device" → queued events
}

func newTDServer(t *testing.T) *tdServer {
	return &tdServer{t: t, devices: map[string]map[string]json.RawMessage{},
		otks: map[string]map[string]map[string]json.RawMessage{}, toDevice: map[string][]json.RawMessage{}}
}

func inner[V any](m map[string]map[string]V, k string) map[string]V {
	if m[k] == nil {
		m[k] = map[string]V{}
	}
	return m[k]
}

// answer returns the response to a request of kind from user's device.
func (hs *tdServer) answer(user, device, kind, eventType string, body json.RawMessage) json.RawMessage {
	hs.t.Helper()
	var response any
	switch kind {
	case "KeysUpload":
		var b struct {
			DeviceKeys  json.RawMessage            `json:"device_keys"`
			OneTimeKeys map[string]json.RawMessage `json:"one_time_keys"`
		}
		hs.decode(body, &b)
		if b.DeviceKeys != nil {
			inner(hs.devices, user)[device] = b.DeviceKeys
		}
		keys := inner(inner(hs.otks, user), device)
		for id, k := range b.OneTimeKeys {
			keys[id] = k
		}
		response = map[string]any{"one_time_key_counts": map[string]int{"signed_curve25519": len(keys)}}
	case "KeysQuery":
		var b struct {
			DeviceKeys map[string][]string `json:"device_keys"`
		}
		hs.decode(body, &b)
		found := map[string]any{}
		for u := range b.DeviceKeys {
			found[u] = hs.devices[u]
		}
		response = map[string]any{"device_keys": found, "failures": map[string]any{}}
	case "KeysClaim":
		var b struct {
			OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		}
		hs.decode(body, &b)
		claimed := map[string]map[string]map[string]json.RawMessage{}
		for u, devices := range b.OneTimeKeys {
			for d := range devices {
				for id, k := range hs.otks[u][d] {
					inner(claimed, u)[d] = map[string]json.RawMessage{id: k}
					delete(hs.otks[u][d], id)
					break
				}
			}
		}
		response = map[string]any{"one_time_keys": claimed, "failures": map[string]any{}}
	case "ToDevice":
		var b struct {
			Messages map[string]map[string]json.RawMessage `json:"messages"`
		}
		hs.decode(body, &b)
		for u, devices := range b.Messages {
			for d, content := range devices {
				ev, _ := json.Marshal(map[string]any{"type": eventType, "sender": user, "content": content})
				hs.toDevice[u+" "+d] = append(hs.toDevice[u+" "+d], ev)
			}
		}
		response = map[string]any{}
	default:
		hs.t.Fatalf("tdServer cannot answer a %s request", kind)
	}
	out, _ := json.Marshal(response)
	return out
}

// take returns and forgets the events queued for a device.
func (hs *tdServer) take(user, device string) []json.RawMessage {
	evs := hs.toDevice[user+" "+device]
	delete(hs.toDevice, user+" "+device)
	return evs
}

func (hs *tdServer) decode(raw json.RawMessage, v any) {
	hs.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		hs.t.Fatalf("tdServer: %v in %s", err, raw)
	}
}

// rustRequest is an outgoing request of the Rust machine.
type rustRequest struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	EventType string          `json:"event_type"`
	Body      json.RawMessage `json:"body"`
}

// rustDevice is one matrix-rust-sdk OlmMachine on the server.
type rustDevice struct {
	hs           *tdServer
	peer         *nodepeer.Peer
	machine      string
	user, device string
}

func newRustDevice(t *testing.T, hs *tdServer, user, device string) *rustDevice {
	r := &rustDevice{hs: hs, peer: nodepeer.Start(t, "rustsdk.mjs"), user: user, device: device}
	r.peer.MustCall("machine.initialize", map[string]any{"user_id": user, "device_id": device}, &r.machine)
	r.flush()
	return r
}

// send answers one request and reports it as sent.
func (r *rustDevice) send(req rustRequest) {
	resp := r.hs.answer(r.user, r.device, req.Type, req.EventType, req.Body)
	r.peer.MustCall("machine.mark_request_as_sent",
		map[string]any{"machine": r.machine, "id": req.ID, "type": req.Type, "response": resp}, nil)
}

// flush sends the machine's outgoing requests until none are left.
func (r *rustDevice) flush() {
	for range 5 {
		var reqs []rustRequest
		r.peer.MustCall("machine.outgoing_requests", map[string]any{"machine": r.machine}, &reqs)
		if len(reqs) == 0 {
			return
		}
		for _, req := range reqs {
			r.send(req)
		}
	}
	r.hs.t.Fatalf("%s keeps sending requests", r.user)
}

// xolmDevice is one xolm Machine on the server.
type xolmDevice struct {
	hs *tdServer
	m  *machine.Machine
}

func newXolmDevice(t *testing.T, hs *tdServer, user, device string) *xolmDevice {
	s, err := cryptostore.Open(context.Background(), filepath.Join(t.TempDir(), "crypto.db"),
		cryptostore.Options{Key: &[32]byte{1}, Role: "app"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := machine.Open(context.Background(), s, user, device, machine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &xolmDevice{hs: hs, m: m}
}

// upload publishes the device keys and n one-time keys, signed as
// /keys/upload carries them, straight from the account.
func (x *xolmDevice) upload(t *testing.T, n int) {
	user, device := x.m.UserID(), x.m.DeviceID()
	err := x.m.Store().Update(context.Background(), "test upload", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		if err := rec.Account.GenerateOneTimeKeys(rand.Reader, n); err != nil {
			return err
		}
		sign := func(v any) json.RawMessage {
			obj, _ := json.Marshal(v)
			canon, err := canonicaljson.Canonicalize(obj)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.Unmarshal(obj, &m)
			m["signatures"] = map[string]map[string]string{user: {"ed25519:" + device: b64.Encode(rec.Account.Sign(canon))}}
			out, _ := json.Marshal(m)
			return out
		}
		ids := rec.Account.IdentityKeys()
		deviceKeys := sign(map[string]any{"user_id": user, "device_id": device,
			"algorithms": []string{machine.OlmAlgorithm, machine.MegolmAlgorithm},
			"keys":       map[string]string{"curve25519:" + device: ids.Curve25519.String(), "ed25519:" + device: ids.Ed25519.String()}})
		otks := map[string]json.RawMessage{}
		for _, k := range rec.Account.OneTimeKeys() {
			otks["signed_curve25519:"+k.ID.String()] = sign(map[string]string{"key": k.Key.String()})
		}
		body, _ := json.Marshal(map[string]any{"device_keys": deviceKeys, "one_time_keys": otks})
		x.hs.answer(user, device, "KeysUpload", "", body)
		rec.Account.MarkKeysAsPublished()
		rec.Shared = true
		return tx.PutAccount(rec)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// learn stores another device's keys as the server has them, as a key query
// would.
func (x *xolmDevice) learn(t *testing.T, user, device string) {
	var k struct {
		Keys map[string]string `json:"keys"`
	}
	raw := x.hs.devices[user][device]
	json.Unmarshal(raw, &k)
	err := x.m.Store().Update(context.Background(), "test learn", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		return tx.PutDevice(&cryptostore.Device{UserID: user, DeviceID: device,
			Curve25519: k.Keys["curve25519:"+device], Ed25519: k.Keys["ed25519:"+device], KeysJSON: raw})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sync hands the device its queued to-device events.
func (x *xolmDevice) sync(t *testing.T) []machine.ToDeviceResult {
	res, err := x.m.ReceiveSyncChanges(context.Background(), machine.SyncChanges{
		ToDeviceEvents: x.hs.take(x.m.UserID(), x.m.DeviceID()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The real matrix-rust-sdk machine claims one of xolm's one-time keys, sends
// an m.room_key over the new Olm session and 500 room messages; xolm
// decrypts the pre-key message, stores the room key with the Rust device's
// keys, and decrypts every room message with it.
func TestToDeviceInteropRustSharesRoomKey(t *testing.T) {
	const room = "!interop:example.org"
	ctx := context.Background()
	hs := newTDServer(t)
	bob := newXolmDevice(t, hs, "@bob:example.org", "BOBXOLM")
	bob.upload(t, 5)
	alice := newRustDevice(t, hs, "@alice:example.org", "ALICERUST")
	bob.learn(t, alice.user, alice.device)

	alice.peer.MustCall("machine.update_tracked_users", map[string]any{"machine": alice.machine, "users": []string{"@bob:example.org"}}, nil)
	alice.flush() // the key query: Rust checks xolm's device keys
	var claim *rustRequest
	alice.peer.MustCall("machine.get_missing_sessions", map[string]any{"machine": alice.machine, "users": []string{"@bob:example.org"}}, &claim)
	if claim == nil || claim.Type != "KeysClaim" {
		t.Fatalf("rust does not claim xolm's key: %+v", claim)
	}
	alice.send(*claim)
	var shares []rustRequest
	alice.peer.MustCall("machine.share_room_key", map[string]any{"machine": alice.machine, "room_id": room,
		"users": []string{"@bob:example.org"}, "settings": map[string]any{"rotation_period_messages": 1000}}, &shares)
	for _, r := range shares {
		alice.send(r)
	}

	res := bob.sync(t)
	if len(res) != 1 {
		t.Fatalf("%d to-device events", len(res))
	}
	r := res[0]
	var aliceKeys struct{ Curve25519, Ed25519 string }
	alice.peer.MustCall("machine.identity_keys", map[string]any{"machine": alice.machine}, &aliceKeys)
	if r.Err != nil || !r.Encrypted || r.Type != machine.EventRoomKey || r.Sender != alice.user ||
		r.SenderKey != aliceKeys.Curve25519 || r.SenderEd25519 != aliceKeys.Ed25519 || r.SenderDevice != alice.device ||
		r.RoomKey == nil || !r.RoomKey.Stored || r.RoomKey.RoomID != room || r.RoomKey.Forwarded {
		t.Fatalf("room key event: %+v", r)
	}
	if again, err := bob.m.ReceiveSyncChanges(ctx, machine.SyncChanges{ToDeviceEvents: shareEvents(t, shares)}); err != nil ||
		len(again) != 1 || again[0].Err == nil {
		t.Fatalf("the same event again: %+v %v", again, err)
	}

	for i := range 500 {
		var content json.RawMessage
		alice.peer.MustCall("machine.encrypt_room_event", map[string]any{"machine": alice.machine, "room_id": room,
			"type": "m.room.message", "content": map[string]any{"msgtype": "m.text", "body": fmt.Sprint("message ", i)}}, &content)
		ev, _ := json.Marshal(map[string]any{"type": "m.room.encrypted", "sender": alice.user, "room_id": room,
			"event_id": fmt.Sprintf("$ev%d", i), "origin_server_ts": 1700000000000 + i, "content": content})
		dec, err := bob.m.DecryptRoomEvent(ctx, room, ev)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		var c struct{ Body string }
		json.Unmarshal(dec.Content, &c)
		if c.Body != fmt.Sprint("message ", i) || dec.MessageIndex != uint32(i) || dec.SessionID != r.RoomKey.SessionID ||
			dec.SenderKey != aliceKeys.Curve25519 || dec.ClaimedEd25519 != aliceKeys.Ed25519 || dec.Forwarded {
			t.Fatalf("message %d: %+v", i, dec)
		}
	}
}

// shareEvents rebuilds the to-device events of Rust's share requests for
// xolm's device, as a second delivery of the same sync would.
func shareEvents(t *testing.T, shares []rustRequest) []json.RawMessage {
	var out []json.RawMessage
	for _, r := range shares {
		var b struct {
			Messages map[string]map[string]json.RawMessage `json:"messages"`
		}
		json.Unmarshal(r.Body, &b)
		for _, content := range b.Messages["@bob:example.org"] {
			ev, _ := json.Marshal(map[string]any{"type": r.EventType, "sender": "@alice:example.org", "content": content})
			out = append(out, ev)
		}
	}
	return out
}
