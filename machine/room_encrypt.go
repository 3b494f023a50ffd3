package machine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
)

// ErrRoomKeyNotShared reports a room without an outbound Megolm session:
// call ShareRoomKey first.
var ErrRoomKeyNotShared = errors.New("machine: no room key shared for the room")

// ErrRoomKeyNotSent is matched by every *RoomKeyNotSentError.
var ErrRoomKeyNotSent = errors.New("machine: the room key's requests are not sent yet")

// RoomKeyNotSentError reports a room whose current session is carried by
// /sendToDevice requests not yet marked as sent: a message encrypted now
// would reach recipients before its key. Send the requests (OutgoingRequests,
// then MarkRequestAsSent), then encrypt.
type RoomKeyNotSentError struct {
	RoomID, SessionID string
	Pending           int // requests still to send
}

func (e *RoomKeyNotSentError) Error() string {
	return fmt.Sprintf("machine: room key %s for %s: %d requests carrying it are not sent yet", e.SessionID, e.RoomID, e.Pending)
}

// Is makes errors.Is(err, ErrRoomKeyNotSent) true.
func (e *RoomKeyNotSentError) Is(target error) bool { return target == ErrRoomKeyNotSent }

// ErrInvalidRoomContent reports an event type or content that EncryptRoomEvent
// refuses: an empty type, content that is not a JSON object, or content over
// MaxEventSize.
var ErrInvalidRoomContent = errors.New("machine: invalid room event content")

// EncryptRoomEvent encrypts a room event of eventType with content (a JSON
// object) under the room's current Megolm session and returns the content of
// the m.room.encrypted event to send in its place.
//
// The room must have a session shared by ShareRoomKey (else
// ErrRoomKeyNotShared) whose requests were all sent (else a
// *RoomKeyNotSentError). Rotation happens in ShareRoomKey: call it before
// each EncryptRoomEvent.
//
// The advanced ratchet and message count are committed, Synced, before the
// ciphertext is returned, so that no index is ever used twice (DESIGN.md
// invariant 6). On any error nothing changed.
func (m *Machine) EncryptRoomEvent(ctx context.Context, roomID, eventType string, content json.RawMessage) (json.RawMessage, error) {
	if eventType == "" || len(content) > MaxEventSize || !isJSONObject(content) {
		return nil, fmt.Errorf("machine: encrypt room event: %w", ErrInvalidRoomContent)
	}
	plaintext, err := json.Marshal(megolmPlaintext{Type: eventType, Content: content, RoomID: roomID})
	if err != nil {
		return nil, fmt.Errorf("machine: encrypt room event: %w: %v", ErrInvalidRoomContent, err)
	}
	defer clear(plaintext)
	var out megolmContent
	err = m.store.Update(ctx, "machine: encrypt room event", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		rec, err := tx.OutboundGroupSession(roomID)
		if errors.Is(err, cryptostore.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrRoomKeyNotShared, roomID)
		}
		if err != nil {
			return err
		}
		if err := roomKeySent(tx, rec); err != nil {
			return err
		}
		ciphertext, err := rec.Session.Encrypt(plaintext) // rec is a copy: stored below
		if err != nil {
			return err
		}
		rec.MessageCount++
		if err := tx.PutOutboundGroupSession(rec); err != nil {
			return err
		}
		out = megolmContent{
			Algorithm:  MegolmAlgorithm,
			SenderKey:  m.curve25519,
			DeviceID:   m.deviceID,
			SessionID:  rec.Session.ID(),
			Ciphertext: b64.Encode(ciphertext),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("machine: encrypt room event: %w", err)
	}
	return json.Marshal(out)
}

// roomKeySent checks that no request carrying rec's session key is pending.
func roomKeySent(tx *cryptostore.Tx, rec *cryptostore.OutboundGroupSessionRecord) error {
	pending, err := tx.OutgoingRequests()
	if err != nil {
		return err
	}
	prefix := roomKeyRequestPrefix(rec.Session.ID())
	n := 0
	for _, r := range pending {
		if strings.HasPrefix(r.ID, prefix) {
			n++
		}
	}
	if n > 0 {
		return &RoomKeyNotSentError{RoomID: rec.RoomID, SessionID: rec.Session.ID(), Pending: n}
	}
	return nil
}

// isJSONObject reports whether b is one valid JSON object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}
