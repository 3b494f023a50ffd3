package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/cryptostore"
)

// MaxRoomEventsPerBatch bounds DecryptRoomEvents: the events of one batch
// share one transaction, which holds the lease while it runs (a Megolm
// decryption is about 70 µs, so 1,000 events take some 0.1 s). A timeline
// page from /messages or /sync is far smaller.
const MaxRoomEventsPerBatch = 1000

// Errors of room event decryption. Every error DecryptRoomEvent returns for
// the event itself (as opposed to a store failure) matches one of these, or
// megolm.ErrBadMAC, megolm.ErrInvalidMessage, megolm.ErrUnknownMessageIndex
// (a *megolm.UnknownMessageIndexError: the message is older than the key),
// or cryptostore.ErrReplay (a *cryptostore.ReplayError).
var (
	// ErrMalformedRoomEvent is matched by every *MalformedRoomEventError.
	ErrMalformedRoomEvent = errors.New("machine: malformed room event")
	// ErrUnsupportedRoomAlgorithm reports an encrypted room event of an
	// algorithm other than m.megolm.v1.aes-sha2.
	ErrUnsupportedRoomAlgorithm = errors.New("machine: unsupported room event algorithm")
	// ErrMissingRoomKey is matched by every *MissingRoomKeyError.
	ErrMissingRoomKey = errors.New("machine: missing room key")
	// ErrRoomMismatch is matched by every *RoomMismatchError.
	ErrRoomMismatch = errors.New("machine: room event encrypted for another room")
	// ErrSenderMismatch is matched by every *SenderMismatchError.
	ErrSenderMismatch = errors.New("machine: room event sender does not own the room key")
	// ErrRoomBatchTooLarge reports a DecryptRoomEvents batch of more than
	// MaxRoomEventsPerBatch events.
	ErrRoomBatchTooLarge = errors.New("machine: too many room events in one batch")
)

// MalformedRoomEventError reports an event that is not a well-formed
// m.room.encrypted room event (before or after decryption). Field names the
// part at fault ("size", "json", "type", "event_id", "content",
// "ciphertext", "plaintext", …).
type MalformedRoomEventError struct {
	Field string
	Err   error // the cause, if any
}

func (e *MalformedRoomEventError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("machine: malformed room event: %s: %v", e.Field, e.Err)
	}
	return "machine: malformed room event: " + e.Field
}

// Is makes errors.Is(err, ErrMalformedRoomEvent) true.
func (e *MalformedRoomEventError) Is(target error) bool { return target == ErrMalformedRoomEvent }

// Unwrap returns the cause.
func (e *MalformedRoomEventError) Unwrap() error { return e.Err }

// MissingRoomKeyError reports an event whose Megolm session is not stored:
// the key has not arrived yet, or must be requested (a key request or a
// backup). SessionID names the session to ask for.
type MissingRoomKeyError struct {
	RoomID, SessionID string
}

func (e *MissingRoomKeyError) Error() string {
	return fmt.Sprintf("machine: missing room key %s for %s", e.SessionID, e.RoomID)
}

// Is makes errors.Is(err, ErrMissingRoomKey) true.
func (e *MissingRoomKeyError) Is(target error) bool { return target == ErrMissingRoomKey }

// RoomMismatchError reports an event whose plaintext names another room than
// the one it was received in: it was copied from there.
type RoomMismatchError struct {
	Want, Got string
}

func (e *RoomMismatchError) Error() string {
	return fmt.Sprintf("machine: room event for room %q received in %q", e.Got, e.Want)
}

// Is makes errors.Is(err, ErrRoomMismatch) true.
func (e *RoomMismatchError) Is(target error) bool { return target == ErrRoomMismatch }

// SenderMismatchError reports an event whose sender is not the owner of the
// device the session came from: another user's key was used to forge it.
type SenderMismatchError struct {
	Sender     string // the event's sender
	DeviceUser string // the owner of the device with the session's sender key
	SenderKey  string
}

func (e *SenderMismatchError) Error() string {
	return fmt.Sprintf("machine: room event from %s uses a room key of %s's device %s", e.Sender, e.DeviceUser, e.SenderKey)
}

// Is makes errors.Is(err, ErrSenderMismatch) true.
func (e *SenderMismatchError) Is(target error) bool { return target == ErrSenderMismatch }

// DecryptedRoomEvent is a decrypted room event and what is known about where
// its key came from.
type DecryptedRoomEvent struct {
	// Type and Content are the cleartext event's, from the ciphertext.
	Type    string
	Content json.RawMessage
	// EventID, Sender and OriginServerTS come from the encrypted event's
	// envelope; RoomID is the room it was received and decrypted in.
	EventID, Sender, RoomID string
	OriginServerTS          int64
	// SessionID and MessageIndex locate the message in its Megolm session.
	SessionID    string
	MessageIndex uint32
	// SenderKey is the Curve25519 key of the device the session came from,
	// ClaimedEd25519 the Ed25519 key that device claimed.
	SenderKey, ClaimedEd25519 string
	// SenderDevice is the sender's device with SenderKey, when known from a
	// key query and its Ed25519 key is ClaimedEd25519; nil otherwise.
	SenderDevice *cryptostore.Device
	// Forwarded is true when the key came through m.forwarded_room_key or an
	// import rather than from the session's creator: its origin is then
	// only as trustworthy as whoever forwarded it.
	Forwarded bool
}

// decryptedEventJSON is the cleartext event as a client shows it.
type decryptedEventJSON struct {
	Type           string          `json:"type"`
	Content        json.RawMessage `json:"content"`
	EventID        string          `json:"event_id"`
	Sender         string          `json:"sender"`
	RoomID         string          `json:"room_id"`
	OriginServerTS int64           `json:"origin_server_ts"`
}

// Event returns the cleartext event as JSON: type and content from the
// ciphertext, event_id, sender, room_id and origin_server_ts from the
// envelope.
func (d *DecryptedRoomEvent) Event() (json.RawMessage, error) {
	return json.Marshal(decryptedEventJSON{d.Type, d.Content, d.EventID, d.Sender, d.RoomID, d.OriginServerTS})
}

// DecryptRoomEvent decrypts an m.room.encrypted event received in roomID.
//
// The event must be a Megolm event whose session is stored (else a
// *MissingRoomKeyError); it is authenticated and decrypted with a copy of
// the session, its plaintext must name roomID (else a *RoomMismatchError),
// and its (session, index) is recorded against its event ID: another event
// at that index is a replay (*cryptostore.ReplayError), the same event again
// is fine (DESIGN.md invariant 8). The session, with its latest ratchet moved
// on, and the record are committed together in one transaction; on any error
// the store is unchanged.
func (m *Machine) DecryptRoomEvent(ctx context.Context, roomID string, event json.RawMessage) (*DecryptedRoomEvent, error) {
	var out *DecryptedRoomEvent
	err := m.store.Update(ctx, "machine: decrypt room event", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		b := m.newRoomBatch(ctx, tx, roomID)
		b.single = true
		env, ciphertext, err := parseRoomEvent(roomID, event)
		if out, err = b.decrypt(&roomEventIn{env, ciphertext, err}); err != nil {
			if f, ok := err.(*storeFailure); ok {
				return f.err
			}
			return err
		}
		return b.commit()
	})
	if err != nil {
		return nil, fmt.Errorf("machine: decrypt room event: %w", err)
	}
	return out, nil
}

// roomBatch decrypts the events of one transaction. Sessions are looked up
// once and decrypted on working copies (for DecryptRoomEvent's one event, the
// store's copy is one); a copy is adopted only when its event passed every
// check, and each session that moved is written back once, at the end.
type roomBatch struct {
	m      *Machine
	ctx    context.Context
	tx     *cryptostore.Tx
	roomID string
	// single is set for DecryptRoomEvent's one event, whose error ends the
	// transaction: its session needs no working copy beside the store's.
	single   bool
	sessions map[string]*batchSession       // by session ID
	order    []*batchSession                // sessions in order of first use
	devices  map[string]*cryptostore.Device // by Curve25519 key; nil: unknown
	// uses holds, for each message index the batch looked up, the event
	// that used it, if any: as recorded when the batch began, then as its
	// events record them. It is nil for DecryptRoomEvent's one event, which
	// looks nothing up.
	uses map[cryptostore.MegolmIndex]indexUse
	// newUses are the uses the batch's events made, written by commit.
	newUses []cryptostore.MegolmIndexUse
}

type batchSession struct {
	rec *cryptostore.InboundGroupSessionRecord // the working copy; nil if err
	err error                                  // the event error of a failed lookup
	// stored is the session's state as loaded: latest ratchet index and
	// whether verified. A decryption changes nothing else, so commit writes
	// the session back only when the working copy moved on from it.
	storedLatest   uint32
	storedVerified bool
}

// indexUse is what a batch knows of a message index: whether an event used
// it, and which.
type indexUse struct {
	used  bool
	first cryptostore.MegolmIndexUse
}

// storeFailure marks an error of the store rather than of an event: it fails
// the whole transaction.
type storeFailure struct{ err error }

func (e *storeFailure) Error() string { return e.err.Error() }
func (e *storeFailure) Unwrap() error { return e.err }

func (m *Machine) newRoomBatch(ctx context.Context, tx *cryptostore.Tx, roomID string) *roomBatch {
	return &roomBatch{m: m, ctx: ctx, tx: tx, roomID: roomID,
		sessions: map[string]*batchSession{}, devices: map[string]*cryptostore.Device{}}
}

// session returns the batch's working copy of a session.
func (b *roomBatch) session(id string) (*batchSession, error) {
	if s, ok := b.sessions[id]; ok {
		return s, nil
	}
	s := &batchSession{}
	rec, err := b.tx.InboundGroupSession(b.roomID, id)
	switch {
	case err == nil:
		s.rec = rec
		s.storedLatest, s.storedVerified = rec.Session.LatestIndex(), rec.Session.SigningKeyVerified()
	case errors.Is(err, cryptostore.ErrNotFound):
		s.err = &MissingRoomKeyError{RoomID: b.roomID, SessionID: id}
	case errors.Is(err, cryptostore.ErrCorrupt):
		s.err = err // that row is unusable; other events may still decrypt
	default:
		return nil, &storeFailure{err}
	}
	b.sessions[id] = s
	b.order = append(b.order, s)
	return s, nil
}

// device returns the device with a Curve25519 key, or nil if none is known.
// This device is known without a key query.
func (b *roomBatch) device(curve25519 string) (*cryptostore.Device, error) {
	if d, ok := b.devices[curve25519]; ok {
		return d, nil
	}
	var d *cryptostore.Device
	if curve25519 == b.m.curve25519 {
		d = &cryptostore.Device{UserID: b.m.userID, DeviceID: b.m.deviceID,
			Curve25519: curve25519, Ed25519: b.m.ed25519}
	} else {
		var err error
		d, err = b.tx.DeviceByCurve25519(curve25519)
		if errors.Is(err, cryptostore.ErrNotFound) {
			d, err = nil, nil
		}
		if err != nil {
			return nil, &storeFailure{err}
		}
	}
	b.devices[curve25519] = d
	return d, nil
}

// decrypt decrypts one event. An error is either the event's (and then
// nothing of it was kept) or a *storeFailure.
func (b *roomBatch) decrypt(in *roomEventIn) (*DecryptedRoomEvent, error) {
	if err := b.ctx.Err(); err != nil {
		return nil, &storeFailure{err}
	}
	if in.err != nil {
		return nil, in.err
	}
	env := in.env
	content := &env.Content
	s, err := b.session(content.SessionID)
	if err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	work := s.rec.Session
	if !b.single {
		work = work.Clone() // the batch's next events may need it unmoved
	}
	plaintext, index, err := work.Decrypt(in.ciphertext)
	if err != nil {
		return nil, fmt.Errorf("machine: room key %s: %w", content.SessionID, err)
	}
	p, err := parseMegolmPlaintext(plaintext)
	clear(plaintext)
	switch {
	case err != nil:
		return nil, &MalformedRoomEventError{Field: "plaintext", Err: err}
	case p.Type == "" || len(p.Content) == 0 || p.Content[0] != '{':
		return nil, &MalformedRoomEventError{Field: "plaintext"}
	case p.RoomID != b.roomID:
		return nil, &RoomMismatchError{Want: b.roomID, Got: p.RoomID}
	}
	rec := s.rec
	dev, err := b.device(rec.SenderKey)
	if err != nil {
		return nil, err
	}
	if dev != nil && dev.UserID != env.Sender {
		return nil, &SenderMismatchError{Sender: env.Sender, DeviceUser: dev.UserID, SenderKey: rec.SenderKey}
	}
	if dev != nil && dev.Ed25519 != rec.SigningKey {
		dev = nil // the key's claimed signer is not that device: vouch for neither
	}
	// Last: a replay changes nothing, and nothing fails after.
	err = b.recordUse(cryptostore.MegolmIndexUse{MegolmIndex: cryptostore.MegolmIndex{SessionID: content.SessionID,
		Index: index}, EventID: env.EventID, OriginTS: env.OriginServerTS})
	if err != nil {
		return nil, err
	}
	rec.Session = work
	return &DecryptedRoomEvent{
		Type: p.Type, Content: p.Content,
		EventID: env.EventID, Sender: env.Sender, RoomID: b.roomID, OriginServerTS: env.OriginServerTS,
		SessionID: content.SessionID, MessageIndex: index,
		SenderKey: rec.SenderKey, ClaimedEd25519: rec.SigningKey, SenderDevice: dev,
		Forwarded: rec.Forwarded,
	}, nil
}

// commit records the index uses of the batch's events, in one statement,
// and writes back each session that its events moved on.
func (b *roomBatch) commit() error {
	if err := b.tx.AddMegolmIndexUses(b.newUses); err != nil {
		return err
	}
	b.newUses = nil
	for _, s := range b.order {
		if s.rec != nil && (s.rec.Session.LatestIndex() != s.storedLatest ||
			s.rec.Session.SigningKeyVerified() != s.storedVerified) {
			if err := b.tx.UpdateInboundGroupSession(s.rec); err != nil {
				return err
			}
		}
	}
	return nil
}
