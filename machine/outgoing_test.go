package machine

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/xolm/xolm/cryptostore"
)

// keysDevice is one machine on its own store file, as a test homeserver's
// client.
type keysDevice struct {
	*Machine
	path string
}

// newKeysDevice opens a machine on a fresh store file.
func newKeysDevice(t testing.TB, user, device string) *keysDevice {
	t.Helper()
	path := filepath.Join(t.TempDir(), "crypto.db")
	m, err := Open(t.Context(), openStore(t, path, "app"), user, device, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &keysDevice{Machine: m, path: path}
}

// keysServer is just enough of a homeserver for the key endpoints: it keeps
// uploaded device keys, one-time and fallback keys, answers queries and
// claims, and refuses, as Synapse does, a key ID uploaded again with other
// content.
type keysServer struct {
	t        testing.TB
	devices  map[string]map[string]json.RawMessage            // user → device → device keys
	otks     map[string]map[string]map[string]json.RawMessage // user → device → "alg:id" → key
	fallback map[string]map[string]map[string]json.RawMessage // user → device → "alg:id" → key
	used     map[string]bool                                  // "user device": fallback key given out
	seen     map[string]json.RawMessage                       // "user device alg:id" → every key ever uploaded
	// rewrite, if set, changes a /keys/query response before it is returned.
	rewrite func(resp map[string]map[string]json.RawMessage)
}

func newKeysServer(t testing.TB) *keysServer {
	return &keysServer{t: t, devices: map[string]map[string]json.RawMessage{},
		otks:     map[string]map[string]map[string]json.RawMessage{},
		fallback: map[string]map[string]map[string]json.RawMessage{},
		used:     map[string]bool{}, seen: map[string]json.RawMessage{}}
}

func keysInner[V any](m map[string]map[string]V, k string) map[string]V {
	if m[k] == nil {
		m[k] = map[string]V{}
	}
	return m[k]
}

// answer returns the server's response to r from d.
func (s *keysServer) answer(d *keysDevice, r *Request) json.RawMessage {
	s.t.Helper()
	var resp any
	switch r.Type {
	case RequestKeysUpload:
		var body keysUploadBody
		s.decode(r.Body, &body)
		if body.DeviceKeys != nil {
			keysInner(s.devices, d.userID)[d.deviceID] = body.DeviceKeys
		}
		otks := keysInner(keysInner(s.otks, d.userID), d.deviceID)
		for name, k := range body.OneTimeKeys {
			s.remember(d, name, k)
			otks[name] = k
		}
		if body.FallbackKeys != nil {
			fb := keysInner(keysInner(s.fallback, d.userID), d.deviceID)
			clear(fb)
			for name, k := range body.FallbackKeys {
				s.remember(d, name, k)
				fb[name] = k
			}
			s.used[d.userID+" "+d.deviceID] = false
		}
		resp = keysUploadResponse{OneTimeKeyCounts: map[string]int{oneTimeKeyAlgorithm: len(otks)}}
	case RequestKeysQuery:
		var body keysQueryBody
		s.decode(r.Body, &body)
		out := map[string]map[string]json.RawMessage{}
		for u := range body.DeviceKeys {
			out[u] = maps.Clone(s.devices[u])
			if out[u] == nil {
				out[u] = map[string]json.RawMessage{}
			}
		}
		if s.rewrite != nil {
			s.rewrite(out)
		}
		resp = keysQueryResponse{DeviceKeys: out}
	case RequestKeysClaim:
		var body keysClaimBody
		s.decode(r.Body, &body)
		out := map[string]map[string]map[string]json.RawMessage{}
		for u, devices := range body.OneTimeKeys {
			for dev := range devices {
				if k, name, ok := s.claim(u, dev); ok {
					keysInner(out, u)[dev] = map[string]json.RawMessage{name: k}
				}
			}
		}
		resp = keysClaimResponse{OneTimeKeys: out}
	default:
		resp = struct{}{}
	}
	raw, err := json.Marshal(resp)
	if err != nil {
		s.t.Fatal(err)
	}
	return raw
}

// remember fails the test if a key ID comes again with other content.
func (s *keysServer) remember(d *keysDevice, name string, k json.RawMessage) {
	key := d.userID + " " + d.deviceID + " " + name
	if old, ok := s.seen[key]; ok && string(old) != string(k) {
		s.t.Fatalf("one-time key %s uploaded again with other content", key)
	}
	s.seen[key] = k
}

// claim hands out the lowest one-time key ID, else the fallback key.
func (s *keysServer) claim(user, device string) (json.RawMessage, string, bool) {
	otks := s.otks[user][device]
	if len(otks) > 0 {
		name := slices.Sorted(maps.Keys(otks))[0]
		k := otks[name]
		delete(otks, name)
		return k, name, true
	}
	for name, k := range s.fallback[user][device] {
		s.used[user+" "+device] = true
		return k, name, true
	}
	return nil, "", false
}

// sync returns what a sync response would report to d about its keys.
func (s *keysServer) sync(d *keysDevice) (map[string]int, []string) {
	unused := []string{}
	if len(s.fallback[d.userID][d.deviceID]) > 0 && !s.used[d.userID+" "+d.deviceID] {
		unused = append(unused, oneTimeKeyAlgorithm)
	}
	return map[string]int{oneTimeKeyAlgorithm: len(s.otks[d.userID][d.deviceID])}, unused
}

func (s *keysServer) decode(raw json.RawMessage, v any) {
	s.t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		s.t.Fatalf("server: %v in %s", err, raw)
	}
}

// flush sends d's outgoing requests and marks them as sent until none are
// left, and returns how many were sent.
func (s *keysServer) flush(d *keysDevice) int {
	s.t.Helper()
	sent := 0
	for range 5 {
		reqs, err := d.OutgoingRequests(s.t.Context())
		if err != nil {
			s.t.Fatal(err)
		}
		if len(reqs) == 0 {
			return sent
		}
		for _, r := range reqs {
			if err := d.MarkRequestAsSent(s.t.Context(), r.ID, r.Type, s.answer(d, r)); err != nil {
				s.t.Fatal(err)
			}
			sent++
		}
	}
	s.t.Fatal("requests keep coming")
	return sent
}

// receiveSync applies what a sync would report to d about its keys.
func (s *keysServer) receiveSync(d *keysDevice, changed, left []string) {
	s.t.Helper()
	counts, unused := s.sync(d)
	err := d.store.Update(s.t.Context(), "test sync", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		if err := d.recordOneTimeKeyCounts(tx, counts, unused); err != nil {
			return err
		}
		return d.markDevicesChanged(tx, changed, left)
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// keysRequestsOf returns the pending requests of type typ.
func keysRequestsOf(t testing.TB, m *Machine, typ RequestType) []*Request {
	t.Helper()
	reqs, err := m.OutgoingRequests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(reqs, func(r *Request) bool { return r.Type != typ })
}

func TestMarkRequestAsSentUnknownWrongTypeAndMalformed(t *testing.T) {
	ctx := context.Background()
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	if err := d.MarkRequestAsSent(ctx, "no-such-request", RequestKeysUpload, json.RawMessage(`{}`)); err != nil {
		t.Fatalf("unknown ID: %v", err)
	}
	ups := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	if len(ups) != 1 {
		t.Fatalf("%d uploads", len(ups))
	}
	before := storeDump(t, d.path)
	var typeErr *RequestTypeError
	if err := d.MarkRequestAsSent(ctx, ups[0].ID, RequestKeysQuery, json.RawMessage(`{}`)); !errors.As(err, &typeErr) ||
		!errors.Is(err, ErrRequestType) || typeErr.Queued != RequestKeysUpload {
		t.Fatalf("wrong type: %v", err)
	}
	for _, resp := range []string{`[]`, `{"one_time_key_counts":{"signed_curve25519":-1}}`, `{}`, `{"one_time_key_counts":3}`, `nul`} {
		err := d.MarkRequestAsSent(ctx, ups[0].ID, RequestKeysUpload, json.RawMessage(resp))
		var re *ResponseError
		if !errors.As(err, &re) || !errors.Is(err, ErrMalformedResponse) || re.ID != ups[0].ID {
			t.Fatalf("response %s: %v", resp, err)
		}
	}
	huge := make([]byte, MaxResponseSize+1)
	if err := d.MarkRequestAsSent(ctx, ups[0].ID, RequestKeysUpload, huge); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("huge response: %v", err)
	}
	if after := storeDump(t, d.path); after != before {
		t.Fatalf("refused responses changed the store:\n%s\nwant:\n%s", after, before)
	}
	if again := keysRequestsOf(t, d.Machine, RequestKeysUpload); len(again) != 1 || again[0].ID != ups[0].ID {
		t.Fatal("the upload is no longer pending after refused responses")
	}
}

// A to-device request queued by another step is returned until marked as
// sent, then gone; marking it twice is harmless.
func TestOutgoingRequestsListsAndRemovesToDevice(t *testing.T) {
	ctx := context.Background()
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	var queued *Request
	err := d.store.Update(ctx, "queue", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		var err error
		queued, err = d.queueToDevice(tx, EventDummy, map[string]map[string]json.RawMessage{"@b:x": {"B": json.RawMessage(`{}`)}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := keysRequestsOf(t, d.Machine, RequestToDevice); len(got) != 1 || got[0].ID != queued.ID || got[0].EventType != EventDummy {
		t.Fatalf("to-device requests %+v", got)
	}
	for range 2 {
		if err := d.MarkRequestAsSent(ctx, queued.ID, RequestToDevice, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if got := keysRequestsOf(t, d.Machine, RequestToDevice); len(got) != 0 {
		t.Fatalf("still pending: %+v", got)
	}
}
