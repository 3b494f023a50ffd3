package machinexp_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

// peer is one of Alice's peers: a machine in the test process on a store of
// its own.
type peer struct {
	*machine.Machine
	hs *homeserver
}

// newPeer opens the peer's machine and uploads its keys.
func newPeer(t *testing.T, hs *homeserver, user, device string) *peer {
	t.Helper()
	ctx := context.Background()
	s, err := cryptostore.Open(ctx, filepath.Join(t.TempDir(), "crypto.db"),
		cryptostore.Options{Key: &[32]byte{7}, Role: "app"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	m, err := machine.Open(ctx, s, user, device, machine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{Machine: m, hs: hs}
	hs.Flush(m)
	return p
}

// connect has the peer query Alice's device and claim one of her one-time
// keys, which makes its Olm session with her.
func (p *peer) connect(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := p.UpdateTrackedUsers(ctx, []string{alice}); err != nil {
		t.Fatal(err)
	}
	p.hs.Flush(p.Machine)
	claim, err := p.GetMissingSessions(ctx, []string{alice})
	if err != nil || claim == nil {
		t.Fatalf("claim: %v %v", claim, err)
	}
	p.hs.Flush(p.Machine)
	if again, err := p.GetMissingSessions(ctx, []string{alice}); err != nil || again != nil {
		t.Fatalf("%s has no session with Alice after the claim: %v", p.UserID(), err)
	}
}

// sendRoomKey shares a new room's key with Alice and returns the one
// to-device event that carries it, as her device will receive it.
func (p *peer) sendRoomKey(t *testing.T, room string) json.RawMessage {
	t.Helper()
	if _, err := p.ShareRoomKey(context.Background(), room, []string{alice}, machine.EncryptionSettings{}); err != nil {
		t.Fatalf("%s shares %s: %v", p.UserID(), room, err)
	}
	p.hs.Flush(p.Machine)
	evs := p.hs.Take(alice, aliceDevice)
	if len(evs) != 1 {
		t.Fatalf("%s's share of %s reached Alice as %d events", p.UserID(), room, len(evs))
	}
	return evs[0]
}

// receive syncs the peer's queued to-device events and returns the error of
// the first that did not decrypt to a stored room key, if any, and how many
// did.
func (p *peer) receive(t *testing.T) (int, error) {
	t.Helper()
	evs := p.hs.Take(p.UserID(), p.DeviceID())
	res, err := p.ReceiveSyncChanges(context.Background(), machine.SyncChanges{ToDeviceEvents: evs})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			return 0, r.Err
		}
		if !r.Encrypted || r.RoomKey == nil || !r.RoomKey.Stored {
			return 0, errors.New("not an encrypted room key: " + string(r.Event))
		}
	}
	return len(res), nil
}

// olmType returns the Olm message type (0 pre-key, 1 normal) of the
// ciphertext for recipient in an m.room.encrypted to-device event.
func olmType(t *testing.T, ev json.RawMessage, recipient string) int {
	t.Helper()
	var e struct {
		Content struct {
			Ciphertext map[string]struct {
				Type int `json:"type"`
			} `json:"ciphertext"`
		} `json:"content"`
	}
	if err := json.Unmarshal(ev, &e); err != nil {
		t.Fatal(err)
	}
	c, ok := e.Content.Ciphertext[recipient]
	if !ok {
		t.Fatalf("no ciphertext for %s in %s", recipient, ev)
	}
	return c.Type
}

// decrypted reports whether a process decrypted an event to a stored room
// key.
func decrypted(r deviceline.Result) bool {
	return r.Reason == "" && r.Encrypted && r.Type == machine.EventRoomKey && r.Stored
}

// unwedging returns the requests among reqs that recovering from a wedged
// session makes: a one-time key claim, or an m.dummy sent on a new session.
// Alice's processes send nothing else to peers unless the test asks them to.
func unwedging(reqs []deviceline.OutRequest) []deviceline.OutRequest {
	var out []deviceline.OutRequest
	for _, r := range reqs {
		if r.Type == string(machine.RequestKeysClaim) || r.Type == string(machine.RequestToDevice) {
			out = append(out, r)
		}
	}
	return out
}

// describe names requests by type and ID.
func describe(reqs []deviceline.OutRequest) string {
	s := make([]string, len(reqs))
	for i, r := range reqs {
		s[i] = r.Type + " " + r.ID
	}
	return strings.Join(s, ", ")
}
