package machinexp_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

// homeserver is just enough of a Matrix homeserver for devices to find each
// other's keys and exchange to-device messages: it keeps uploaded device,
// one-time and fallback keys, answers /keys/query and /keys/claim, and
// queues /sendToDevice messages until the recipient's next sync. Every key
// ID ever uploaded is remembered with the request that carried it: a key ID
// in a second upload request, or again with other content, fails the test
// (a server refuses the latter; the former means a process generated or
// sent keys it should not have). The same request sent by both processes of
// a device is one upload, as a retry is, and a to-device request sent twice
// is delivered once, as its transaction ID makes a server do.
//
// Devices are named "user device". It is used from the test goroutine only.
type homeserver struct {
	t        *testing.T
	devices  map[string]map[string]json.RawMessage // user → device → device keys
	otks     map[string]map[string]json.RawMessage // device → "alg:id" → key
	fallback map[string]map[string]json.RawMessage // device → "alg:id" → key
	uploaded map[string]uploadedKey                // "device alg:id" → every key ever uploaded
	txns     map[string]bool                       // "device txnID" of to-device requests delivered
	inbox    map[string][]json.RawMessage          // device → to-device events not yet synced
	claimed  []json.RawMessage                     // every one-time key handed out, in order
}

// uploadedKey is a key as uploaded, and the upload request that carried it.
type uploadedKey struct {
	key      json.RawMessage
	request  string
	fallback bool
}

func newHomeserver(t *testing.T) *homeserver {
	return &homeserver{t: t,
		devices:  map[string]map[string]json.RawMessage{},
		otks:     map[string]map[string]json.RawMessage{},
		fallback: map[string]map[string]json.RawMessage{},
		uploaded: map[string]uploadedKey{},
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

// answer returns the response to request id of type typ from user's device.
func (hs *homeserver) answer(user, device, id, typ, eventType string, body json.RawMessage) json.RawMessage {
	hs.t.Helper()
	dev := user + " " + device
	var resp any
	switch machine.RequestType(typ) {
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
		for name, k := range b.OneTimeKeys {
			if hs.upload(dev, id, name, k, false) {
				otks[name] = k
			}
		}
		if len(b.FallbackKeys) > 0 {
			fb := entry(hs.fallback, dev)
			clear(fb)
			for name, k := range b.FallbackKeys {
				hs.upload(dev, id, name, k, true)
				fb[name] = k
			}
		}
		resp = map[string]any{"one_time_key_counts": hs.counts(user, device)}
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
				if name, k, ok := hs.claim(u + " " + d); ok {
					entry(claimed, u)[d] = map[string]json.RawMessage{name: k}
				}
			}
		}
		resp = map[string]any{"one_time_keys": claimed, "failures": map[string]any{}}
	case machine.RequestToDevice:
		var b struct {
			Messages map[string]map[string]json.RawMessage `json:"messages"`
		}
		hs.decode(body, &b)
		if !hs.txns[dev+" "+id] {
			hs.txns[dev+" "+id] = true
			for u, devices := range b.Messages {
				for d, content := range devices {
					ev, _ := json.Marshal(map[string]any{"type": eventType, "sender": user, "content": content})
					hs.inbox[u+" "+d] = append(hs.inbox[u+" "+d], ev)
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
// key in the same request again (both processes sent it) is not.
func (hs *homeserver) upload(dev, request, name string, k json.RawMessage, fallback bool) bool {
	hs.t.Helper()
	id := dev + " " + name
	old, ok := hs.uploaded[id]
	switch {
	case !ok:
		hs.uploaded[id] = uploadedKey{key: k, request: request, fallback: fallback}
		return true
	case string(old.key) != string(k):
		hs.t.Errorf("key ID %s uploaded again with other content", id)
	case old.request != request:
		hs.t.Errorf("key ID %s uploaded twice, in requests %s and %s", id, old.request, request)
	}
	return false
}

// claim hands out the device's lowest one-time key ID, else its fallback key.
func (hs *homeserver) claim(dev string) (string, json.RawMessage, bool) {
	if otks := hs.otks[dev]; len(otks) > 0 {
		name := slices.Sorted(maps.Keys(otks))[0]
		k := otks[name]
		delete(otks, name)
		hs.claimed = append(hs.claimed, k)
		return name, k, true
	}
	for name, k := range hs.fallback[dev] {
		hs.claimed = append(hs.claimed, k)
		return name, k, true
	}
	return "", nil, false
}

// counts is the device's device_one_time_keys_count.
func (hs *homeserver) counts(user, device string) map[string]int {
	return map[string]int{"signed_curve25519": len(hs.otks[user+" "+device])}
}

// take returns the device's queued to-device events and empties its inbox.
func (hs *homeserver) take(user, device string) []json.RawMessage {
	evs := hs.inbox[user+" "+device]
	delete(hs.inbox, user+" "+device)
	return evs
}

func (hs *homeserver) decode(raw json.RawMessage, v any) {
	hs.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		hs.t.Fatalf("homeserver: %v in %s", err, raw)
	}
}

// flushLocal sends a machine's outgoing requests until none are left.
func (hs *homeserver) flushLocal(m *machine.Machine) {
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
			resp := hs.answer(m.UserID(), m.DeviceID(), r.ID, string(r.Type), r.EventType, r.Body)
			if err := m.MarkRequestAsSent(ctx, r.ID, r.Type, resp); err != nil {
				hs.t.Fatal(err)
			}
		}
	}
	hs.t.Fatalf("%s keeps sending requests", m.UserID())
}

// flushProc sends the outgoing requests of Alice's process p until none are
// left and returns them.
func (hs *homeserver) flushProc(p *deviceline.Proc) []deviceline.OutRequest {
	hs.t.Helper()
	var sent []deviceline.OutRequest
	for range 5 {
		reqs := mustCall(hs.t, p, deviceline.Request{Op: deviceline.OpOutgoing}).Requests
		if len(reqs) == 0 {
			return sent
		}
		for _, r := range reqs {
			hs.send(p, r)
		}
		sent = append(sent, reqs...)
	}
	hs.t.Fatalf("%s process keeps sending requests", p.Role)
	return nil
}

// send answers one request of Alice's process p and marks it as sent there.
func (hs *homeserver) send(p *deviceline.Proc, r deviceline.OutRequest) {
	hs.t.Helper()
	resp := hs.answer(alice, aliceDevice, r.ID, r.Type, r.EventType, r.Body)
	mustCall(hs.t, p, deviceline.Request{Op: deviceline.OpMark, RequestID: r.ID, RequestType: r.Type, Response: resp})
}
