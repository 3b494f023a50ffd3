package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// demoHomeserver is as much of a Matrix homeserver as the demo's devices
// need to find each other and talk: it keeps uploaded device, one-time and
// fallback keys, answers /keys/query and /keys/claim, and queues
// /sendToDevice messages until the recipient's next sync. Devices are named
// "user device".
//
// Like Synapse, it refuses a one-time key ID uploaded again with other
// content (keeping the first); it counts such uploads, which only a process
// that wrote back a stale account can make.
type demoHomeserver struct {
	devices  map[string]map[string]json.RawMessage // user → device → device keys
	otks     map[string]map[string]json.RawMessage // device → "alg:id" → one-time key
	fallback map[string]map[string]json.RawMessage // device → "alg:id" → fallback key
	// fallbackUsed marks devices whose fallback key was claimed since it was
	// uploaded.
	fallbackUsed map[string]bool
	seen         map[string]json.RawMessage   // "device alg:id" → the first key uploaded with that ID
	toDevice     map[string][]json.RawMessage // device → queued events
	// sent counts the to-device events queued for each device, and
	// reusedKeyIDs the key IDs uploaded again with other content.
	sent         map[string]int
	reusedKeyIDs int
}

func newDemoHomeserver() *demoHomeserver {
	return &demoHomeserver{
		devices:      map[string]map[string]json.RawMessage{},
		otks:         map[string]map[string]json.RawMessage{},
		fallback:     map[string]map[string]json.RawMessage{},
		fallbackUsed: map[string]bool{},
		seen:         map[string]json.RawMessage{},
		toDevice:     map[string][]json.RawMessage{},
		sent:         map[string]int{},
	}
}

func deviceName(user, device string) string { return user + " " + device }

// answer returns the response to r, sent by user's device.
func (hs *demoHomeserver) answer(user, device string, r demoRequest) (json.RawMessage, error) {
	var resp any
	var err error
	switch r.Type {
	case "KeysUpload":
		resp, err = hs.upload(user, device, r.Body)
	case "KeysQuery":
		resp, err = hs.query(r.Body)
	case "KeysClaim":
		resp, err = hs.claim(r.Body)
	case "ToDevice":
		resp, err = hs.sendToDevice(user, r.EventType, r.Body)
	default:
		err = fmt.Errorf("no endpoint for a %s request", r.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("homeserver: %s from %s: %w", r.Type, deviceName(user, device), err)
	}
	return json.Marshal(resp)
}

func (hs *demoHomeserver) upload(user, device string, body json.RawMessage) (any, error) {
	var b struct {
		DeviceKeys   json.RawMessage            `json:"device_keys"`
		OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
		FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, err
	}
	name := deviceName(user, device)
	if b.DeviceKeys != nil {
		if hs.devices[user] == nil {
			hs.devices[user] = map[string]json.RawMessage{}
		}
		hs.devices[user][device] = b.DeviceKeys
	}
	if hs.otks[name] == nil {
		hs.otks[name] = map[string]json.RawMessage{}
	}
	for id, k := range b.OneTimeKeys {
		if hs.firstUpload(name, id, k) {
			hs.otks[name][id] = k
		}
	}
	if len(b.FallbackKeys) > 0 {
		fb := map[string]json.RawMessage{}
		for id, k := range b.FallbackKeys {
			if hs.firstUpload(name, id, k) {
				fb[id] = k
			}
		}
		hs.fallback[name], hs.fallbackUsed[name] = fb, false
	}
	return map[string]any{"one_time_key_counts": hs.keyCounts(name)}, nil
}

// firstUpload records a key ID and reports whether it is new or the same
// key again; another key under a known ID is counted and refused.
func (hs *demoHomeserver) firstUpload(name, id string, k json.RawMessage) bool {
	seenID := name + " " + id
	if old, ok := hs.seen[seenID]; ok {
		if string(old) != string(k) {
			hs.reusedKeyIDs++
			return false
		}
		return true
	}
	hs.seen[seenID] = k
	return true
}

func (hs *demoHomeserver) keyCounts(name string) map[string]int {
	return map[string]int{"signed_curve25519": len(hs.otks[name])}
}

func (hs *demoHomeserver) query(body json.RawMessage) (any, error) {
	var b struct {
		DeviceKeys map[string][]string `json:"device_keys"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, err
	}
	found := map[string]map[string]json.RawMessage{}
	for user := range b.DeviceKeys {
		found[user] = maps.Clone(hs.devices[user])
		if found[user] == nil {
			found[user] = map[string]json.RawMessage{}
		}
	}
	return map[string]any{"device_keys": found, "failures": map[string]any{}}, nil
}

func (hs *demoHomeserver) claim(body json.RawMessage) (any, error) {
	var b struct {
		OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, err
	}
	claimed := map[string]map[string]map[string]json.RawMessage{}
	for user, devices := range b.OneTimeKeys {
		for device := range devices {
			if id, k, ok := hs.claimOne(deviceName(user, device)); ok {
				if claimed[user] == nil {
					claimed[user] = map[string]map[string]json.RawMessage{}
				}
				claimed[user][device] = map[string]json.RawMessage{id: k}
			}
		}
	}
	return map[string]any{"one_time_keys": claimed, "failures": map[string]any{}}, nil
}

// claimOne hands out the device's lowest one-time key ID, else its fallback
// key, which stays (and is marked used).
func (hs *demoHomeserver) claimOne(name string) (string, json.RawMessage, bool) {
	if otks := hs.otks[name]; len(otks) > 0 {
		id := slices.Min(slices.Collect(maps.Keys(otks)))
		k := otks[id]
		delete(otks, id)
		return id, k, true
	}
	if fb := hs.fallback[name]; len(fb) > 0 {
		id := slices.Min(slices.Collect(maps.Keys(fb)))
		hs.fallbackUsed[name] = true
		return id, fb[id], true
	}
	return "", nil, false
}

func (hs *demoHomeserver) sendToDevice(sender, eventType string, body json.RawMessage) (any, error) {
	var b struct {
		Messages map[string]map[string]json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, err
	}
	for user, devices := range b.Messages {
		for device, content := range devices {
			event, err := json.Marshal(map[string]any{"type": eventType, "sender": sender, "content": content})
			if err != nil {
				return nil, err
			}
			name := deviceName(user, device)
			hs.toDevice[name] = append(hs.toDevice[name], event)
			hs.sent[name]++
		}
	}
	return map[string]any{}, nil
}

// sync returns the crypto part of a sync response for a device and hands
// its queued to-device events over: the next sync will not see them again.
func (hs *demoHomeserver) sync(user, device string) demoCommand {
	name := deviceName(user, device)
	events := hs.toDevice[name]
	delete(hs.toDevice, name)
	unused := []string{}
	if len(hs.fallback[name]) > 0 && !hs.fallbackUsed[name] {
		unused = append(unused, "signed_curve25519")
	}
	return demoCommand{Op: opSync, ToDevice: events, OneTimeKeyCounts: hs.keyCounts(name), UnusedFallbackKeyTypes: unused}
}
