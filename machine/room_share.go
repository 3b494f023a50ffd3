package machine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
)

// Rotation defaults and bounds of the specification's m.room.encryption
// event (rotation_period_ms, rotation_period_msgs).
const (
	// DefaultRotationPeriod is the spec's default rotation_period_ms: a week.
	DefaultRotationPeriod = 7 * 24 * time.Hour
	// DefaultRotationMessages is the spec's default rotation_period_msgs.
	DefaultRotationMessages = 100
	// MaxRotationPeriod caps a room's rotation period. The settings come from
	// room state that any room admin sets; a longer period would let one
	// session cover more history than the spec's default, so it is clamped,
	// as matrix-sdk-crypto clamps it.
	MaxRotationPeriod = DefaultRotationPeriod
	// MaxRotationMessages caps a room's rotation message count for the same
	// reason (matrix-sdk-crypto's cap too).
	MaxRotationMessages = 10_000
)

// MaxRoomKeyRecipientsPerShare bounds how many devices one ShareRoomKey call
// sends the room key to, and so the work of its one transaction (an Olm
// encryption and a session write per device, about 50 µs each: half a second
// at the limit, during which the lease is held). Devices beyond it are left
// for the next call and counted in [ShareIncompleteError.Deferred].
const MaxRoomKeyRecipientsPerShare = 10_000

// RoomKeyMessagesPerRequest is how many m.room_key messages one /sendToDevice
// request carries at most; more recipients make more requests. 250 is
// matrix-sdk-crypto's chunk: a request stays far below homeservers' body
// limits (each message is about 1 KiB of Olm ciphertext).
const RoomKeyMessagesPerRequest = 250

// EncryptionSettings are a room's Megolm rotation settings, from its
// m.room.encryption state event. The zero value is the spec's defaults.
type EncryptionSettings struct {
	// RotationPeriod is how long an outbound session is used; zero or less
	// means DefaultRotationPeriod, and it is capped at MaxRotationPeriod.
	RotationPeriod time.Duration
	// RotationMessages is how many messages an outbound session encrypts;
	// zero or less means DefaultRotationMessages, and it is capped at
	// MaxRotationMessages.
	RotationMessages int
}

// normalized returns the settings with defaults and caps applied.
func (s EncryptionSettings) normalized() EncryptionSettings {
	if s.RotationPeriod <= 0 {
		s.RotationPeriod = DefaultRotationPeriod
	}
	s.RotationPeriod = min(s.RotationPeriod, MaxRotationPeriod)
	if s.RotationMessages <= 0 {
		s.RotationMessages = DefaultRotationMessages
	}
	s.RotationMessages = min(s.RotationMessages, MaxRotationMessages)
	return s
}

// ErrShareIncomplete is matched by every *ShareIncompleteError.
var ErrShareIncomplete = errors.New("machine: room key not shared with every device")

// ShareIncompleteError reports the devices ShareRoomKey did not send the
// room key to. It is not a failure of the step: the requests returned with it
// were committed and must be sent (OutgoingRequests lists them too).
type ShareIncompleteError struct {
	RoomID, SessionID string
	// NoSession lists devices without an Olm session: claim one-time keys for
	// them (GetMissingSessions), then call ShareRoomKey again. It also makes
	// errors.Is(err, ErrNoOlmSession) true.
	NoSession []*cryptostore.Device
	// Deferred counts devices beyond MaxRoomKeyRecipientsPerShare: call
	// ShareRoomKey again to reach them.
	Deferred int
}

func (e *ShareIncompleteError) Error() string {
	return fmt.Sprintf("machine: room key %s for %s not shared with %d devices without an olm session and %d deferred",
		e.SessionID, e.RoomID, len(e.NoSession), e.Deferred)
}

// Is makes errors.Is match ErrShareIncomplete, and ErrNoOlmSession when
// devices without a session were skipped.
func (e *ShareIncompleteError) Is(target error) bool {
	return target == ErrShareIncomplete || (target == ErrNoOlmSession && len(e.NoSession) > 0)
}

// ShareRoomKey makes sure every known device of users (this device aside)
// has the room's current Megolm session, and returns the /sendToDevice
// requests that carry it, as m.room_key events encrypted with Olm. users is
// the room's whole membership that may read new messages, each time: a user
// left out is taken to have left.
//
// The room's outbound session is created on first use, and replaced by a new
// one when it is older than settings.RotationPeriod, has encrypted
// settings.RotationMessages messages, or was shared with a device that is no
// longer among users' devices (a member left or removed a device: the new
// session keeps later messages from it). A new session is also stored as an
// inbound session of this device, so that its own messages decrypt.
//
// Devices already given the session are skipped, so calling ShareRoomKey
// before every EncryptRoomEvent is cheap, as with matrix-sdk-crypto. Devices
// without an Olm session are skipped too and listed in a *ShareIncompleteError
// returned with the requests: claim their keys, then share again.
//
// The step is one transaction, committed with Synced durability before the
// requests are returned: they carry session keys and advanced Olm chains
// (DESIGN.md invariant 6). On any other error nothing changed.
func (m *Machine) ShareRoomKey(ctx context.Context, roomID string, users []string, settings EncryptionSettings) ([]*Request, error) {
	if roomID == "" {
		return nil, errors.New("machine: share room key: empty room ID")
	}
	settings = settings.normalized()
	users = slices.Compact(slices.Sorted(slices.Values(users)))
	var (
		requests   []*Request
		incomplete *ShareIncompleteError
	)
	err := m.store.Update(ctx, "machine: share room key", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		requests, incomplete = nil, nil
		devices, err := m.roomKeyRecipients(tx, users)
		if err != nil {
			return err
		}
		out, err := m.currentOutboundSession(tx, roomID, devices, settings)
		if err != nil {
			return err
		}
		shared, err := tx.Shares(out.Session.ID())
		if err != nil {
			return err
		}
		todo := slices.DeleteFunc(devices, func(d *cryptostore.Device) bool {
			_, ok := slices.BinarySearchFunc(shared, d, compareShareDevice)
			return ok
		})
		incomplete = &ShareIncompleteError{RoomID: roomID, SessionID: out.Session.ID()}
		if len(todo) > MaxRoomKeyRecipientsPerShare {
			incomplete.Deferred = len(todo) - MaxRoomKeyRecipientsPerShare
			todo = todo[:MaxRoomKeyRecipientsPerShare]
		}
		requests, incomplete.NoSession, err = m.sendRoomKey(tx, out, todo)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("machine: share room key: %w", err)
	}
	if len(incomplete.NoSession) > 0 || incomplete.Deferred > 0 {
		return requests, incomplete
	}
	return requests, nil
}

// roomKeyRecipients lists the known devices of users, sorted by user and
// device, without this device.
func (m *Machine) roomKeyRecipients(tx *cryptostore.Tx, users []string) ([]*cryptostore.Device, error) {
	var out []*cryptostore.Device
	for _, u := range users {
		devs, err := tx.Devices(u)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			if u == m.userID && d.DeviceID == m.deviceID {
				continue
			}
			out = append(out, d)
		}
	}
	return out, nil
}

func compareShareDevice(s cryptostore.Share, d *cryptostore.Device) int {
	if c := strings.Compare(s.UserID, d.UserID); c != 0 {
		return c
	}
	return strings.Compare(s.DeviceID, d.DeviceID)
}

// currentOutboundSession returns the room's outbound session, first
// replacing it with a new one if there is none or it must rotate.
func (m *Machine) currentOutboundSession(tx *cryptostore.Tx, roomID string, devices []*cryptostore.Device, settings EncryptionSettings) (*cryptostore.OutboundGroupSessionRecord, error) {
	rec, err := tx.OutboundGroupSession(roomID)
	switch {
	case errors.Is(err, cryptostore.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		why, err := m.rotationReason(tx, rec, devices, settings)
		if err != nil || why == "" {
			return rec, err
		}
		m.log.Info().Str("room", roomID).Str("session", rec.Session.ID()).Str("reason", why).Msg("rotating room key")
		if err := tx.DeleteOutboundGroupSession(roomID); err != nil {
			return nil, err
		}
	}
	return m.newOutboundSession(tx, roomID)
}

// rotationReason says why rec must be replaced, or "" if it need not be.
func (m *Machine) rotationReason(tx *cryptostore.Tx, rec *cryptostore.OutboundGroupSessionRecord, devices []*cryptostore.Device, settings EncryptionSettings) (string, error) {
	if rec.MessageCount >= settings.RotationMessages {
		return fmt.Sprintf("encrypted %d messages", rec.MessageCount), nil
	}
	if age := m.now().Sub(rec.CreatedAt); age >= settings.RotationPeriod {
		return fmt.Sprintf("created %s ago", age.Round(time.Second)), nil
	}
	shared, err := tx.Shares(rec.Session.ID())
	if err != nil {
		return "", err
	}
	for _, sh := range shared {
		if !slices.ContainsFunc(devices, func(d *cryptostore.Device) bool { return compareShareDevice(sh, d) == 0 }) {
			return fmt.Sprintf("device %s of %s is gone", sh.DeviceID, sh.UserID), nil
		}
	}
	return "", nil
}

// newOutboundSession creates and stores the room's outbound session and this
// device's inbound copy of it.
func (m *Machine) newOutboundSession(tx *cryptostore.Tx, roomID string) (*cryptostore.OutboundGroupSessionRecord, error) {
	sess, err := megolm.NewOutboundGroupSession(m.rand)
	if err != nil {
		return nil, err
	}
	now := m.now()
	rec := &cryptostore.OutboundGroupSessionRecord{RoomID: roomID, Session: sess, CreatedAt: now}
	if err := tx.PutOutboundGroupSession(rec); err != nil {
		return nil, err
	}
	key := sess.SessionKey()
	in, err := megolm.NewInboundGroupSession(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	_, err = tx.PutInboundGroupSession(&cryptostore.InboundGroupSessionRecord{
		RoomID:     roomID,
		SenderKey:  m.curve25519,
		SigningKey: m.ed25519,
		Session:    in,
		ImportedAt: now,
	})
	return rec, err
}

// sendRoomKey encrypts the session's key for each device, records the
// shares and queues the requests. Devices without an Olm session are
// returned, not shared with.
func (m *Machine) sendRoomKey(tx *cryptostore.Tx, out *cryptostore.OutboundGroupSessionRecord, devices []*cryptostore.Device) ([]*Request, []*cryptostore.Device, error) {
	if len(devices) == 0 {
		return nil, nil, nil
	}
	sess := out.Session
	key := sess.SessionKey()
	content, err := json.Marshal(roomKeyContent{
		Algorithm:  MegolmAlgorithm,
		RoomID:     out.RoomID,
		SessionID:  sess.ID(),
		SessionKey: b64.Encode(key),
	})
	clear(key)
	if err != nil {
		return nil, nil, err
	}
	defer clear(content)
	var (
		noSession []*cryptostore.Device
		shares    []cryptostore.Share
		requests  []*Request
		messages  = map[string]map[string]json.RawMessage{}
		queued    int
	)
	flush := func() error {
		r, err := m.queueRoomKeyRequest(tx, sess.ID(), messages)
		if err == nil {
			requests = append(requests, r)
			messages, queued = map[string]map[string]json.RawMessage{}, 0
		}
		return err
	}
	for _, d := range devices {
		enc, err := m.encryptToDevice(tx, d, EventRoomKey, content)
		if errors.Is(err, ErrNoOlmSession) {
			noSession = append(noSession, d)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if messages[d.UserID] == nil {
			messages[d.UserID] = map[string]json.RawMessage{}
		}
		messages[d.UserID][d.DeviceID] = enc
		shares = append(shares, cryptostore.Share{UserID: d.UserID, DeviceID: d.DeviceID, MessageIndex: sess.MessageIndex()})
		if queued++; queued == RoomKeyMessagesPerRequest {
			if err := flush(); err != nil {
				return nil, nil, err
			}
		}
	}
	if queued > 0 {
		if err := flush(); err != nil {
			return nil, nil, err
		}
	}
	if err := tx.AddShares(sess.ID(), shares); err != nil {
		return nil, nil, err
	}
	return requests, noSession, nil
}

// roomKeyRequestPrefix starts the ID of every request carrying sessionID's
// key, so that EncryptRoomEvent can tell whether one is still pending. It is
// made of characters that need no escaping in a URL path, where the ID
// travels as the /sendToDevice transaction ID.
func roomKeyRequestPrefix(sessionID string) string {
	h := sha256.Sum256([]byte(sessionID))
	return "roomkey." + hex.EncodeToString(h[:12]) + "."
}

// queueRoomKeyRequest queues one /sendToDevice request of m.room.encrypted
// events carrying sessionID's key.
func (m *Machine) queueRoomKeyRequest(tx *cryptostore.Tx, sessionID string, messages map[string]map[string]json.RawMessage) (*Request, error) {
	var nonce [12]byte
	if _, err := io.ReadFull(m.rand, nonce[:]); err != nil {
		return nil, fmt.Errorf("machine: request id: %w", err)
	}
	body, err := json.Marshal(toDeviceMessages{Messages: messages})
	if err != nil {
		return nil, err
	}
	r := &Request{
		ID:        roomKeyRequestPrefix(sessionID) + hex.EncodeToString(nonce[:]),
		Type:      RequestToDevice,
		EventType: EventRoomEncrypted,
		Body:      body,
	}
	return r, m.queueRequest(tx, r)
}
