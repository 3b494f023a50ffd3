package coldstart_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// childEvents is the events file the child reads.
type childEvents struct {
	ToDevice  json.RawMessage `json:"to_device"`
	RoomID    string          `json:"room_id"`
	RoomEvent json.RawMessage `json:"room_event"`
}

// addBob makes Bob a peer of Alice's machine m: his device is known, an Olm
// session between them has carried one message each way's worth of setup
// (Alice's pre-key message reached Bob, so Bob now sends normal messages),
// and Alice holds Bob's Megolm session for benchRoom. It returns Bob's next
// to-device event (an m.room_key for a second session, as a normal Olm
// message) and his next room event in the shared session.
func addBob(ctx context.Context, m *machine.Machine) (*childEvents, error) {
	bob, err := olm.NewAccount(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := bob.GenerateOneTimeKeys(rand.Reader, 1); err != nil {
		return nil, err
	}
	bobIDs, alice := bob.IdentityKeys(), m.IdentityKeys()
	shared, err := megolm.NewOutboundGroupSession(rand.Reader)
	if err != nil {
		return nil, err
	}
	sharedIn, err := megolm.NewInboundGroupSession(shared.SessionKey())
	if err != nil {
		return nil, err
	}

	var bobSession *olm.Session
	err = m.Store().Update(ctx, "fixture: bob", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		out, err := rec.Account.NewOutboundSession(rand.Reader, bobIDs.Curve25519, bob.OneTimeKeys()[0].Key)
		if err != nil {
			return err
		}
		typ, body, err := out.Encrypt(rand.Reader, []byte(`{}`))
		if err != nil || typ != olm.MessageTypePreKey {
			return fmt.Errorf("first message: type %d: %v", typ, err)
		}
		pre, err := olm.ParsePreKeyMessage(body)
		if err != nil {
			return err
		}
		if bobSession, _, err = bob.NewInboundSession(&alice.Curve25519, pre); err != nil {
			return err
		}
		now := time.Now()
		if err := tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: bobIDs.Curve25519.String(),
			Session: out, CreatedAt: now, LastUsedAt: now}); err != nil {
			return err
		}
		if err := tx.PutDevice(&cryptostore.Device{UserID: bobUser, DeviceID: bobDevice,
			Curve25519: bobIDs.Curve25519.String(), Ed25519: bobIDs.Ed25519.String(),
			KeysJSON: []byte(`{}`), UpdatedAt: now}); err != nil {
			return err
		}
		_, err = tx.PutInboundGroupSession(&cryptostore.InboundGroupSessionRecord{RoomID: benchRoom,
			SenderKey: bobIDs.Curve25519.String(), SigningKey: bobIDs.Ed25519.String(),
			Session: sharedIn, ImportedAt: now})
		return err
	})
	if err != nil {
		return nil, err
	}

	toDevice, err := bobRoomKeyEvent(bob, bobSession, alice)
	if err != nil {
		return nil, err
	}
	roomEvent, err := bobRoomEvent(bobIDs, shared)
	if err != nil {
		return nil, err
	}
	return &childEvents{ToDevice: toDevice, RoomID: benchRoom, RoomEvent: roomEvent}, nil
}

// bobRoomKeyEvent is Bob's m.room_key for a new session of benchRoom,
// encrypted to Alice as a normal Olm message.
func bobRoomKeyEvent(bob *olm.Account, sess *olm.Session, alice olm.IdentityKeys) (json.RawMessage, error) {
	next, err := megolm.NewOutboundGroupSession(rand.Reader)
	if err != nil {
		return nil, err
	}
	ids := bob.IdentityKeys()
	plaintext, err := json.Marshal(map[string]any{
		"type": machine.EventRoomKey,
		"content": map[string]string{"algorithm": machine.MegolmAlgorithm, "room_id": benchRoom,
			"session_id": next.ID(), "session_key": b64.Encode(next.SessionKey())},
		"sender": bobUser, "recipient": aliceUser,
		"recipient_keys": map[string]string{"ed25519": alice.Ed25519.String()},
		"keys":           map[string]string{"ed25519": ids.Ed25519.String()},
	})
	if err != nil {
		return nil, err
	}
	typ, body, err := sess.Encrypt(rand.Reader, plaintext)
	if err != nil || typ != olm.MessageTypeNormal {
		return nil, fmt.Errorf("to-device message: type %d: %v", typ, err)
	}
	return json.Marshal(map[string]any{
		"type": machine.EventRoomEncrypted, "sender": bobUser,
		"content": map[string]any{"algorithm": machine.OlmAlgorithm, "sender_key": ids.Curve25519.String(),
			"ciphertext": map[string]any{alice.Curve25519.String(): map[string]any{"type": 1, "body": b64.Encode(body)}}},
	})
}

// bobRoomEvent is Bob's next text message in benchRoom.
func bobRoomEvent(ids olm.IdentityKeys, out *megolm.OutboundGroupSession) (json.RawMessage, error) {
	plaintext := []byte(`{"type":"m.room.message","content":{"msgtype":"m.text","body":"Running late, see you at eight."},"room_id":"` + benchRoom + `"}`)
	ct, err := out.Encrypt(plaintext)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"type": machine.EventRoomEncrypted, "event_id": "$coldstart1", "sender": bobUser,
		"origin_server_ts": 1_700_000_000_000, "room_id": benchRoom,
		"content": map[string]string{"algorithm": machine.MegolmAlgorithm, "sender_key": ids.Curve25519.String(),
			"device_id": bobDevice, "session_id": out.ID(), "ciphertext": b64.Encode(ct)},
	})
}

// TestChildDecryptsBothEvents runs the child once on a small fixture built
// the same way as the benchmark's: the to-device event and the room event
// both decrypt, a second child on the same file reports the to-device event
// as already seen, and a child given the wrong key fails without decrypting.
func TestChildDecryptsBothEvents(t *testing.T) {
	dir := t.TempDir()
	if err := buildFixture(dir, 20, 50); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "nseproc")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/xolm/xolm/bench/coldstart/nseproc").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	args := []string{"-store", filepath.Join(dir, storeFile), "-events", filepath.Join(dir, eventsFile),
		"-user", aliceUser, "-device", aliceDevice}
	run := func(key string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(key + "\n")
		out, err := cmd.Output()
		return string(out), err
	}
	out, err := run(hexKey(storeKey))
	if err != nil || !strings.Contains(out, `"outcome":"ok"`) || !strings.Contains(out, `"to_device_type":"m.room_key"`) ||
		!strings.Contains(out, `"room_event_type":"m.room.message"`) {
		t.Fatalf("first child: %v: %s", err, out)
	}
	if out, err := run(hexKey(storeKey)); err == nil || !strings.Contains(out, "already decrypted") {
		t.Fatalf("second child on the same file: %v: %s", err, out)
	}
	if out, err := run(hexKey([32]byte{1})); err == nil || strings.Contains(out, `"outcome":"ok"`) {
		t.Fatalf("wrong key: %v: %s", err, out)
	}
}
