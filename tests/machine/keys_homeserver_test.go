package machine_test

import (
	"context"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/machine"
)

// keysHomeserver is just enough of a Matrix homeserver for xolm's Machine and
// matrix-rust-sdk's OlmMachine to find each other's keys: it keeps uploaded
// device, one-time and fallback keys, answers /keys/query and /keys/claim,
// and queues /sendToDevice messages until the recipient's next sync. It
// refuses, as Synapse does, a one-time key ID uploaded again with other
// content.
type keysHomeserver struct {
	t        *testing.T
	devices  map[string]map[string]json.RawMessage            // user → device → device keys
	otks     map[string]map[string]map[string]json.RawMessage // user → device → "alg:id" → key
	fallback map[string]map[string]map[string]json.RawMessage // user → device → "alg:id" → key
	seen     map[string]json.RawMessage                       // "user device alg:id" → key, every upload
	claimed  []json.RawMessage                                // every key handed out, in order
	toDevice map[string][]json.RawMessage                     // "user device" → queued events
}

func newKeysHomeserver(t *testing.T) *keysHomeserver {
	return &keysHomeserver{t: t,
		devices:  map[string]map[string]json.RawMessage{},
		otks:     map[string]map[string]map[string]json.RawMessage{},
		fallback: map[string]map[string]map[string]json.RawMessage{},
		seen:     map[string]json.RawMessage{},
		toDevice: map[string][]json.RawMessage{},
	}
}

func keysEntry[V any](m map[string]map[string]V, k string) map[string]V {
	if m[k] == nil {
		m[k] = map[string]V{}
	}
	return m[k]
}

// answer returns the response to a request of kind from user's device.
func (hs *keysHomeserver) answer(user, device, kind, eventType string, body json.RawMessage) json.RawMessage {
	hs.t.Helper()
	var resp any
	switch kind {
	case "KeysUpload":
		var b struct {
			DeviceKeys   json.RawMessage            `json:"device_keys"`
			OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
			FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
		}
		hs.decode(body, &b)
		if b.DeviceKeys != nil {
			keysEntry(hs.devices, user)[device] = b.DeviceKeys
		}
		otks := keysEntry(keysEntry(hs.otks, user), device)
		for name, k := range b.OneTimeKeys {
			hs.remember(user, device, name, k)
			otks[name] = k
		}
		if len(b.FallbackKeys) > 0 {
			fb := keysEntry(keysEntry(hs.fallback, user), device)
			clear(fb)
			for name, k := range b.FallbackKeys {
				hs.remember(user, device, name, k)
				fb[name] = k
			}
		}
		resp = map[string]any{"one_time_key_counts": map[string]int{"signed_curve25519": len(otks)}}
	case "KeysQuery":
		var b struct {
			DeviceKeys map[string][]string `json:"device_keys"`
		}
		hs.decode(body, &b)
		found := map[string]map[string]json.RawMessage{}
		for u := range b.DeviceKeys {
			found[u] = maps.Clone(hs.devices[u])
			if found[u] == nil {
				found[u] = map[string]json.RawMessage{}
			}
		}
		resp = map[string]any{"device_keys": found, "failures": map[string]any{}}
	case "KeysClaim":
		var b struct {
			OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		}
		hs.decode(body, &b)
		claimed := map[string]map[string]map[string]json.RawMessage{}
		for u, devices := range b.OneTimeKeys {
			for d := range devices {
				if name, k, ok := hs.claim(u, d); ok {
					keysEntry(claimed, u)[d] = map[string]json.RawMessage{name: k}
				}
			}
		}
		resp = map[string]any{"one_time_keys": claimed, "failures": map[string]any{}}
	case "ToDevice":
		var b struct {
			Messages map[string]map[string]json.RawMessage `json:"messages"`
		}
		hs.decode(body, &b)
		for u, devices := range b.Messages {
			for d, content := range devices {
				event, _ := json.Marshal(map[string]any{"type": eventType, "sender": user, "content": content})
				hs.toDevice[u+" "+d] = append(hs.toDevice[u+" "+d], event)
			}
		}
		resp = map[string]any{}
	default:
		hs.t.Fatalf("homeserver cannot answer a %s request", kind)
	}
	raw, err := json.Marshal(resp)
	if err != nil {
		hs.t.Fatal(err)
	}
	return raw
}

func (hs *keysHomeserver) remember(user, device, name string, k json.RawMessage) {
	hs.t.Helper()
	id := user + " " + device + " " + name
	if old, ok := hs.seen[id]; ok && string(old) != string(k) {
		hs.t.Fatalf("homeserver: one-time key %s already exists with other content", id)
	}
	hs.seen[id] = k
}

// claim hands out the device's lowest one-time key ID, else its fallback key.
func (hs *keysHomeserver) claim(user, device string) (string, json.RawMessage, bool) {
	if otks := hs.otks[user][device]; len(otks) > 0 {
		name := slices.Sorted(maps.Keys(otks))[0]
		k := otks[name]
		delete(otks, name)
		hs.claimed = append(hs.claimed, k)
		return name, k, true
	}
	for name, k := range hs.fallback[user][device] {
		hs.claimed = append(hs.claimed, k)
		return name, k, true
	}
	return "", nil, false
}

func (hs *keysHomeserver) decode(raw json.RawMessage, v any) {
	hs.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		hs.t.Fatalf("homeserver: %v in %s", err, raw)
	}
}

// keysXolm is an xolm Machine on its own store file.
type keysXolm struct {
	*machine.Machine
	store *cryptostore.Store
}

func newKeysXolm(t *testing.T, user, device string) *keysXolm {
	t.Helper()
	ctx := context.Background()
	s, err := cryptostore.Open(ctx, filepath.Join(t.TempDir(), "crypto.db"),
		cryptostore.Options{Key: &[32]byte{1, 2, 3}, Role: "app"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := machine.Open(ctx, s, user, device, machine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &keysXolm{Machine: m, store: s}
}

// flushXolm sends x's outgoing requests until none are left.
func (hs *keysHomeserver) flushXolm(x *keysXolm) {
	hs.t.Helper()
	ctx := context.Background()
	for range 5 {
		reqs, err := x.OutgoingRequests(ctx)
		if err != nil {
			hs.t.Fatal(err)
		}
		if len(reqs) == 0 {
			return
		}
		for _, r := range reqs {
			resp := hs.answer(x.UserID(), x.DeviceID(), string(r.Type), r.EventType, r.Body)
			if err := x.MarkRequestAsSent(ctx, r.ID, r.Type, resp); err != nil {
				hs.t.Fatal(err)
			}
		}
	}
	hs.t.Fatal("xolm keeps sending requests")
}

// keysRust is an OlmMachine in a matrix-sdk-crypto-wasm peer.
type keysRust struct {
	peer           *nodepeer.Peer
	handle         string
	user, deviceID string
}

func newKeysRust(t *testing.T, peer *nodepeer.Peer, user, device string) *keysRust {
	t.Helper()
	r := &keysRust{peer: peer, user: user, deviceID: device}
	peer.MustCall("machine.initialize", map[string]any{"user_id": user, "device_id": device}, &r.handle)
	return r
}

// keysRustRequest is an outgoing request as rustsdk.mjs flattens it.
type keysRustRequest struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Body      json.RawMessage `json:"body"`
	EventType string          `json:"event_type"`
}

// flushRust sends r's outgoing requests until none are left.
func (hs *keysHomeserver) flushRust(r *keysRust) {
	hs.t.Helper()
	for range 5 {
		var reqs []keysRustRequest
		r.peer.MustCall("machine.outgoing_requests", map[string]any{"machine": r.handle}, &reqs)
		if len(reqs) == 0 {
			return
		}
		for _, q := range reqs {
			hs.markRust(r, q)
		}
	}
	hs.t.Fatalf("%s keeps sending requests", r.user)
}

// markRust answers one request of r's.
func (hs *keysHomeserver) markRust(r *keysRust, q keysRustRequest) {
	hs.t.Helper()
	resp := hs.answer(r.user, r.deviceID, q.Type, q.EventType, q.Body)
	r.peer.MustCall("machine.mark_request_as_sent",
		map[string]any{"machine": r.handle, "id": q.ID, "type": q.Type, "response": resp}, nil)
}

// keysProcessed is a to-device event as receive_sync_changes reports it.
type keysProcessed struct {
	Type  string `json:"type"`
	Event struct {
		Type    string          `json:"type"`
		Sender  string          `json:"sender"`
		Content json.RawMessage `json:"content"`
	} `json:"event"`
	EncryptionInfo *struct {
		Sender              string `json:"sender"`
		SenderDevice        string `json:"sender_device"`
		SenderCurve25519Key string `json:"sender_curve25519_key"`
	} `json:"encryption_info"`
}

// syncRust delivers r's queued to-device events and returns what r made of
// them.
func (hs *keysHomeserver) syncRust(r *keysRust, changed []string) []keysProcessed {
	hs.t.Helper()
	key := r.user + " " + r.deviceID
	events := hs.toDevice[key]
	delete(hs.toDevice, key)
	if events == nil {
		events = []json.RawMessage{}
	}
	if changed == nil {
		changed = []string{}
	}
	var out []keysProcessed
	r.peer.MustCall("machine.receive_sync_changes", map[string]any{
		"machine": r.handle, "to_device_events": events, "changed": changed, "left": []string{},
		"one_time_key_counts": map[string]int{"signed_curve25519": len(hs.otks[r.user][r.deviceID])},
	}, &out)
	hs.flushRust(r)
	return out
}
