package machine

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
)

// RoomKeyInfo describes the room key an m.room_key or m.forwarded_room_key
// event carried.
type RoomKeyInfo struct {
	RoomID, SessionID string
	// Forwarded is true for a key from m.forwarded_room_key: it came from
	// another of our devices, not from the session's creator.
	Forwarded bool
	// Stored is false when the store already held a copy as good (DESIGN.md
	// invariant 10: the better copy is kept).
	Stored bool
}

// ErrInvalidRoomKey is matched by [*RoomKeyError].
var ErrInvalidRoomKey = errors.New("machine: room key refused")

// ErrUntrustedForward reports an m.forwarded_room_key that did not come from
// one of our own devices known from a key query. Forwarded keys are unsigned:
// taking them from anyone would let a stranger plant a session in the store
// ahead of the real key.
var ErrUntrustedForward = errors.New("machine: forwarded room key from a device that is not ours")

// RoomKeyError reports a room key event that decrypted but whose key was not
// stored. Field names the offending field; Err is the failure (from megolm,
// or ErrUntrustedForward).
type RoomKeyError struct {
	EventType         string
	RoomID, SessionID string
	Field             string
	Err               error
}

func (e *RoomKeyError) Error() string {
	return fmt.Sprintf("machine: %s for session %s in %s refused: %s: %v", e.EventType, e.SessionID, e.RoomID, e.Field, e.Err)
}

// Unwrap returns the failure.
func (e *RoomKeyError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidRoomKey) true.
func (e *RoomKeyError) Is(target error) bool { return target == ErrInvalidRoomKey }

// storeRoomKey stores the inbound group session an Olm-decrypted m.room_key
// carries, with the Olm sender's Curve25519 key and the Ed25519 key its
// plaintext claims.
func (m *Machine) storeRoomKey(tx *cryptostore.Tx, dec *decryptedOlm) (*RoomKeyInfo, error) {
	var c roomKeyContent
	refuse := func(field string, err error) error {
		return &RoomKeyError{EventType: EventRoomKey, RoomID: c.RoomID, SessionID: c.SessionID, Field: field, Err: err}
	}
	if err := json.Unmarshal(dec.plaintext.Content, &c); err != nil {
		return nil, refuse("content", err)
	}
	sess, err := checkRoomKey(c.Algorithm, c.RoomID, c.SessionID, c.SessionKey, megolm.NewInboundGroupSession)
	if err != nil {
		return nil, refuse(err.field, err.err)
	}
	return m.putRoomKey(tx, &cryptostore.InboundGroupSessionRecord{
		RoomID: c.RoomID, SenderKey: dec.senderKey, SigningKey: dec.plaintext.Keys.Ed25519,
		Session: sess, SharedHistory: c.SharedHistory, ImportedAt: m.now(),
	})
}

// storeForwardedRoomKey stores the inbound group session an Olm-decrypted
// m.forwarded_room_key carries, marked as forwarded, with the sender keys
// the forwarding device vouches for. It takes keys only from our own
// devices.
func (m *Machine) storeForwardedRoomKey(tx *cryptostore.Tx, sender string, dec *decryptedOlm) (*RoomKeyInfo, error) {
	var c forwardedRoomKeyContent
	refuse := func(field string, err error) error {
		return &RoomKeyError{EventType: EventForwardedRoomKey, RoomID: c.RoomID, SessionID: c.SessionID, Field: field, Err: err}
	}
	if err := json.Unmarshal(dec.plaintext.Content, &c); err != nil {
		return nil, refuse("content", err)
	}
	if sender != m.userID || !dec.device.Known() {
		return nil, refuse("sender", ErrUntrustedForward)
	}
	sess, err := checkRoomKey(c.Algorithm, c.RoomID, c.SessionID, c.SessionKey, megolm.ImportInboundGroupSession)
	if err != nil {
		return nil, refuse(err.field, err.err)
	}
	if c.SenderKey == "" || c.SenderClaimedEd25519Key == "" {
		return nil, refuse("sender_key", errors.New("the original sender's keys are missing"))
	}
	return m.putRoomKey(tx, &cryptostore.InboundGroupSessionRecord{
		RoomID: c.RoomID, SenderKey: c.SenderKey, SigningKey: c.SenderClaimedEd25519Key,
		Session: sess, Forwarded: true, SharedHistory: c.SharedHistory, ImportedAt: m.now(),
	})
}

// fieldError is a room key check's failure before it becomes a RoomKeyError.
type fieldError struct {
	field string
	err   error
}

// checkRoomKey checks a room key's fields and builds its session with parse
// (the v2 sharing format of m.room_key, or the v1 export format of forwarded
// keys). The session must be the one session_id names.
func checkRoomKey(algorithm, roomID, sessionID, sessionKey string,
	parse func([]byte) (*megolm.InboundGroupSession, error)) (*megolm.InboundGroupSession, *fieldError) {
	if algorithm != MegolmAlgorithm {
		return nil, &fieldError{"algorithm", fmt.Errorf("%q is not %s", algorithm, MegolmAlgorithm)}
	}
	if roomID == "" {
		return nil, &fieldError{"room_id", errors.New("missing")}
	}
	key, err := b64.Decode(sessionKey)
	if err != nil {
		return nil, &fieldError{"session_key", err}
	}
	defer clear(key)
	sess, err := parse(key)
	if err != nil {
		return nil, &fieldError{"session_key", err}
	}
	if sess.ID() != sessionID {
		return nil, &fieldError{"session_id", fmt.Errorf("the key is for session %s", sess.ID())}
	}
	return sess, nil
}

// putRoomKey stores rec, keeping the better copy.
func (m *Machine) putRoomKey(tx *cryptostore.Tx, rec *cryptostore.InboundGroupSessionRecord) (*RoomKeyInfo, error) {
	stored, err := tx.PutInboundGroupSession(rec)
	if err != nil {
		return nil, err
	}
	m.log.Debug().Str("room", rec.RoomID).Str("session", rec.Session.ID()).Bool("forwarded", rec.Forwarded).
		Bool("stored", stored).Msg("room key received")
	return &RoomKeyInfo{RoomID: rec.RoomID, SessionID: rec.Session.ID(), Forwarded: rec.Forwarded, Stored: stored}, nil
}
