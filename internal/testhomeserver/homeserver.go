// Package testhomeserver is just enough of a Matrix homeserver for the tests'
// devices (xolm machines, matrix-rust-sdk's OlmMachine, helper processes) to
// find each other's keys and exchange to-device messages.
//
// It keeps uploaded device, one-time and fallback keys, answers /keys/query
// and /keys/claim, and queues /sendToDevice messages until the recipient's
// next sync. Every key ID ever uploaded is remembered with the request that
// carried it: a key ID uploaded again with other content fails the test, as
// a server refuses it, and so does a key ID in a second upload request (a
// device generated or sent keys it should not have). The same request sent
// twice, as a retry or by both processes of one device, is one upload, and a
// to-device request sent twice is delivered once, as its transaction ID makes
// a server do.
//
// A Server is used from the test goroutine only.
package testhomeserver

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/xolm/xolm/machine"
)

// Server is the homeserver. Devices are named by user and device ID.
type Server struct {
	t        testing.TB
	devices  map[string]map[string]json.RawMessage // user → device → device keys
	otks     map[string]map[string]json.RawMessage // "user device" → "alg:id" → key
	fallback map[string]map[string]json.RawMessage // "user device" → "alg:id" → key
	uploads  map[string]Upload                     // "user device alg:id" → the key's upload
	txns     map[string]bool                       // "user device txnID" of to-device requests delivered
	inbox    map[string][]json.RawMessage          // "user device" → to-device events not yet synced
	claimed  []json.RawMessage                     // every key handed out, in order
}

// Upload is a key as uploaded and the request that carried it.
type Upload struct {
	Key      json.RawMessage
	Request  string
	Fallback bool
}

// New returns an empty homeserver that reports to t.
func New(t testing.TB) *Server {
	return &Server{t: t,
		devices:  map[string]map[string]json.RawMessage{},
		otks:     map[string]map[string]json.RawMessage{},
		fallback: map[string]map[string]json.RawMessage{},
		uploads:  map[string]Upload{},
		txns:     map[string]bool{},
		inbox:    map[string][]json.RawMessage{},
	}
}

func entry[V any](m map[string]map[string]V, k string) map[string]V {
	if m[k] == nil {
		m[k] = map[string]V{}
	}
	return m[k]
}

func name(user, device string) string { return user + " " + device }

// Answer returns the response to the request with ID id and type typ from
// user's device (eventType is a to-device request's).
func (hs *Server) Answer(user, device, id string, typ machine.RequestType, eventType string, body json.RawMessage) json.RawMessage {
	hs.t.Helper()
	dev := name(user, device)
	var resp any
	switch typ {
	case machine.RequestKeysUpload:
		var b struct {
			DeviceKeys   json.RawMessage            `json:"device_keys"`
			OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
			FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
		}
		hs.decode(body, &b)
		if b.DeviceKeys != nil {
			entry(hs.devices, user)[device] = b.DeviceKeys
		}
		otks := entry(hs.otks, dev)
		for keyID, k := range b.OneTimeKeys {
			if hs.upload(dev, id, keyID, k, false) {
				otks[keyID] = k
			}
		}
		if len(b.FallbackKeys) > 0 {
			fb := entry(hs.fallback, dev)
			clear(fb)
			for keyID, k := range b.FallbackKeys {
				hs.upload(dev, id, keyID, k, true)
				fb[keyID] = k
			}
		}
		resp = map[string]any{"one_time_key_counts": hs.OneTimeKeyCounts(user, device)}
	case machine.RequestKeysQuery:
		var b struct {
			DeviceKeys map[string][]string `json:"device_keys"`
		}
		hs.decode(body, &b)
		found := map[string]map[string]json.RawMessage{}
		for u := range b.DeviceKeys {
			found[u] = maps.Clone(entry(hs.devices, u))
		}
		resp = map[string]any{"device_keys": found, "failures": map[string]any{}}
	case machine.RequestKeysClaim:
		var b struct {
			OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		}
		hs.decode(body, &b)
		claimed := map[string]map[string]map[string]json.RawMessage{}
		for u, devices := range b.OneTimeKeys {
			for d := range devices {
				if keyID, k, ok := hs.claim(name(u, d)); ok {
					entry(claimed, u)[d] = map[string]json.RawMessage{keyID: k}
				}
			}
		}
		resp = map[string]any{"one_time_keys": claimed, "failures": map[string]any{}}
	case machine.RequestToDevice:
		var b struct {
			Messages map[string]map[string]json.RawMessage `json:"messages"`
		}
		hs.decode(body, &b)
		if txn := dev + " " + id; !hs.txns[txn] {
			hs.txns[txn] = true
			for u, devices := range b.Messages {
				for d, content := range devices {
					ev, _ := json.Marshal(map[string]any{"type": eventType, "sender": user, "content": content})
					hs.Deliver(u, d, ev)
				}
			}
		}
		resp = map[string]any{}
	default:
		hs.t.Fatalf("homeserver cannot answer a %s request", typ)
	}
	raw, err := json.Marshal(resp)
	if err != nil {
		hs.t.Fatal(err)
	}
	return raw
}

// upload records one uploaded key and reports whether it is new. The same
// key in the same request again (a retry, or both processes sent it) is
// not.
func (hs *Server) upload(dev, request, keyID string, k json.RawMessage, fallback bool) bool {
	hs.t.Helper()
	id := dev + " " + keyID
	old, ok := hs.uploads[id]
	switch {
	case !ok:
		hs.uploads[id] = Upload{Key: k, Request: request, Fallback: fallback}
		return true
	case string(old.Key) != string(k):
		hs.t.Errorf("homeserver: key ID %s uploaded again with other content", id)
	case old.Request != request:
		hs.t.Errorf("homeserver: key ID %s uploaded twice, in requests %s and %s", id, old.Request, request)
	}
	return false
}

// Claim hands out one of the device's keys as /keys/claim does, for a
// device that is not part of the test: its lowest one-time key ID, else its
// fallback key.
func (hs *Server) Claim(user, device string) (keyID string, key json.RawMessage, ok bool) {
	return hs.claim(name(user, device))
}

func (hs *Server) claim(dev string) (string, json.RawMessage, bool) {
	if otks := hs.otks[dev]; len(otks) > 0 {
		keyID := slices.Sorted(maps.Keys(otks))[0]
		k := otks[keyID]
		delete(otks, keyID)
		hs.claimed = append(hs.claimed, k)
		return keyID, k, true
	}
	for keyID, k := range hs.fallback[dev] {
		hs.claimed = append(hs.claimed, k)
		return keyID, k, true
	}
	return "", nil, false
}

func (hs *Server) decode(raw json.RawMessage, v any) {
	hs.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		hs.t.Fatalf("homeserver: %v in %s", err, raw)
	}
}

// OneTimeKeyCounts is the device's device_one_time_keys_count.
func (hs *Server) OneTimeKeyCounts(user, device string) map[string]int {
	return map[string]int{"signed_curve25519": len(hs.otks[name(user, device)])}
}

// FallbackKeys is how many fallback keys the device has published.
func (hs *Server) FallbackKeys(user, device string) int { return len(hs.fallback[name(user, device)]) }

// Claimed returns every key handed out by /keys/claim, in order.
func (hs *Server) Claimed() []json.RawMessage { return slices.Clone(hs.claimed) }

// Uploads returns every key ID ever uploaded ("user device alg:id") with
// its upload.
func (hs *Server) Uploads() map[string]Upload { return maps.Clone(hs.uploads) }

// DeviceKeys returns the device keys the device uploaded.
func (hs *Server) DeviceKeys(user, device string) json.RawMessage { return hs.devices[user][device] }

// SetDeviceKeys replaces the device keys /keys/query returns for the
// device, as a server that tampers with them would.
func (hs *Server) SetDeviceKeys(user, device string, keys json.RawMessage) {
	entry(hs.devices, user)[device] = keys
}

// Deliver queues a to-device event for the device's next sync.
func (hs *Server) Deliver(user, device string, event json.RawMessage) {
	dev := name(user, device)
	hs.inbox[dev] = append(hs.inbox[dev], event)
}

// Pending is how many to-device events wait for the device's next sync.
func (hs *Server) Pending(user, device string) int { return len(hs.inbox[name(user, device)]) }

// Take returns the device's queued to-device events and empties its inbox.
func (hs *Server) Take(user, device string) []json.RawMessage {
	dev := name(user, device)
	evs := hs.inbox[dev]
	delete(hs.inbox, dev)
	return evs
}

// Flush sends m's outgoing requests until none are left.
func (hs *Server) Flush(m *machine.Machine) {
	hs.t.Helper()
	ctx := context.Background()
	for range 5 {
		reqs, err := m.OutgoingRequests(ctx)
		if err != nil {
			hs.t.Fatal(err)
		}
		if len(reqs) == 0 {
			return
		}
		for _, r := range reqs {
			resp := hs.Answer(m.UserID(), m.DeviceID(), r.ID, r.Type, r.EventType, r.Body)
			if err := m.MarkRequestAsSent(ctx, r.ID, r.Type, resp); err != nil {
				hs.t.Fatal(err)
			}
		}
	}
	hs.t.Fatalf("%s keeps sending requests", m.UserID())
}
