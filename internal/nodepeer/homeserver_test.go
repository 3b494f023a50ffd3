package nodepeer

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

// homeserver is just enough of a Matrix homeserver for OlmMachines to find
// each other: it stores uploaded device and one-time keys, answers key
// queries and claims, and queues to-device messages until the next sync.
type homeserver struct {
	t        *testing.T
	devices  map[string]map[string]json.RawMessage            // user → device → signed device keys
	otks     map[string]map[string]map[string]json.RawMessage // user → device → key id → key
	toDevice map[string][]json.RawMessage                     // "user device" → queued events
}

func newHomeserver(t *testing.T) *homeserver {
	return &homeserver{
		t:        t,
		devices:  map[string]map[string]json.RawMessage{},
		otks:     map[string]map[string]map[string]json.RawMessage{},
		toDevice: map[string][]json.RawMessage{},
	}
}

// client is one OlmMachine in one peer.
type client struct {
	peer           *Peer
	machine        handle
	user, deviceID string
}

func (hs *homeserver) login(p *Peer, user, deviceID string) *client {
	c := &client{peer: p, user: user, deviceID: deviceID}
	p.MustCall("machine.initialize", map[string]any{"user_id": user, "device_id": deviceID}, &c.machine)
	hs.flush(c)
	return c
}

// flush answers c's outgoing requests until it has none left.
func (hs *homeserver) flush(c *client) {
	hs.t.Helper()
	for range 5 {
		var requests []struct {
			outgoingRequest
			EventType string `json:"event_type"`
		}
		c.peer.MustCall("machine.outgoing_requests", map[string]any{"machine": c.machine}, &requests)
		if len(requests) == 0 {
			return
		}
		for _, r := range requests {
			response := hs.answer(c, r.Type, r.EventType, r.Body)
			c.peer.MustCall("machine.mark_request_as_sent",
				map[string]any{"machine": c.machine, "id": r.ID, "type": r.Type, "response": response}, nil)
		}
	}
	hs.t.Fatalf("%s keeps sending requests", c.user)
}

func (hs *homeserver) answer(c *client, kind, eventType string, raw json.RawMessage) any {
	hs.t.Helper()
	switch kind {
	case "KeysUpload":
		var body struct {
			DeviceKeys  json.RawMessage            `json:"device_keys"`
			OneTimeKeys map[string]json.RawMessage `json:"one_time_keys"`
		}
		hs.decode(raw, &body)
		if body.DeviceKeys != nil {
			setDefault(hs.devices, c.user)[c.deviceID] = body.DeviceKeys
		}
		keys := setDefault(setDefault(hs.otks, c.user), c.deviceID)
		maps.Copy(keys, body.OneTimeKeys)
		return map[string]any{"one_time_key_counts": map[string]int{"signed_curve25519": len(keys)}}
	case "KeysQuery":
		var body struct {
			DeviceKeys map[string][]string `json:"device_keys"`
		}
		hs.decode(raw, &body)
		found := map[string]any{}
		for user := range body.DeviceKeys {
			found[user] = hs.devices[user]
		}
		return map[string]any{"device_keys": found, "failures": map[string]any{}}
	case "KeysClaim":
		var body struct {
			OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
		}
		hs.decode(raw, &body)
		claimed := map[string]map[string]map[string]json.RawMessage{}
		for user, devices := range body.OneTimeKeys {
			for device := range devices {
				keys := hs.otks[user][device]
				if len(keys) == 0 {
					continue
				}
				id := slices.Sorted(maps.Keys(keys))[0]
				setDefault(claimed, user)[device] = map[string]json.RawMessage{id: keys[id]}
				delete(keys, id)
			}
		}
		return map[string]any{"one_time_keys": claimed, "failures": map[string]any{}}
	case "ToDevice":
		var body struct {
			Messages map[string]map[string]json.RawMessage `json:"messages"`
		}
		hs.decode(raw, &body)
		for user, devices := range body.Messages {
			for device, content := range devices {
				event, err := json.Marshal(map[string]any{"type": eventType, "sender": c.user, "content": content})
				if err != nil {
					hs.t.Fatal(err)
				}
				hs.toDevice[user+" "+device] = append(hs.toDevice[user+" "+device], event)
			}
		}
		return map[string]any{}
	}
	hs.t.Fatalf("homeserver cannot answer a %s request", kind)
	return nil
}

// processedEvent is one to-device event as receive_sync_changes returns it.
type processedEvent struct {
	Type           string          `json:"type"`
	Event          json.RawMessage `json:"event"`
	EncryptionInfo *struct {
		Sender              string `json:"sender"`
		SenderDevice        string `json:"sender_device"`
		SenderCurve25519Key string `json:"sender_curve25519_key"`
	} `json:"encryption_info"`
}

// sync delivers c's queued to-device events and returns what c made of them.
func (hs *homeserver) sync(c *client, changed []string) []processedEvent {
	hs.t.Helper()
	key := c.user + " " + c.deviceID
	events := hs.toDevice[key]
	delete(hs.toDevice, key)
	var processed []processedEvent
	c.peer.MustCall("machine.receive_sync_changes", map[string]any{
		"machine":             c.machine,
		"to_device_events":    events,
		"changed":             changed,
		"one_time_key_counts": map[string]int{"signed_curve25519": len(hs.otks[c.user][c.deviceID])},
	}, &processed)
	hs.flush(c)
	return processed
}

func (hs *homeserver) decode(raw json.RawMessage, v any) {
	hs.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		hs.t.Fatalf("homeserver: %v in %s", err, raw)
	}
}

func setDefault[K comparable, V any, M ~map[K]map[string]V](m M, k K) map[string]V {
	inner, ok := m[k]
	if !ok {
		inner = map[string]V{}
		m[k] = inner
	}
	return inner
}
