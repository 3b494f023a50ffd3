package machine_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/internal/testhomeserver"
	"github.com/xolm/xolm/machine"
)

// keysHomeserver is the test's homeserver (see testhomeserver) between
// xolm's Machine and matrix-rust-sdk's OlmMachine.
type keysHomeserver struct {
	*testhomeserver.Server
	t *testing.T
}

func newKeysHomeserver(t *testing.T) *keysHomeserver {
	return &keysHomeserver{Server: testhomeserver.New(t), t: t}
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
	resp := hs.Answer(r.user, r.deviceID, q.ID, machine.RequestType(q.Type), q.EventType, q.Body)
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
	events := hs.Take(r.user, r.deviceID)
	if events == nil {
		events = []json.RawMessage{}
	}
	if changed == nil {
		changed = []string{}
	}
	var out []keysProcessed
	r.peer.MustCall("machine.receive_sync_changes", map[string]any{
		"machine": r.handle, "to_device_events": events, "changed": changed, "left": []string{},
		"one_time_key_counts": hs.OneTimeKeyCounts(r.user, r.deviceID),
	}, &out)
	hs.flushRust(r)
	return out
}
