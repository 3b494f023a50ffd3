package machine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// MaxToDeviceEventsPerBatch bounds the to-device events one
// [Machine.ReceiveSyncChanges] call processes, all in one transaction.
// Synapse hands out at most 100 per sync response; the bound keeps a
// misbehaving server from holding the store's write lock for an unbounded
// time. Events past it are not processed and say so ([ErrToDeviceBatchLimit]).
const MaxToDeviceEventsPerBatch = 1000

// SyncChanges is the crypto part of a /sync response.
type SyncChanges struct {
	// ToDeviceEvents is to_device.events, as received.
	ToDeviceEvents []json.RawMessage
	// ChangedDevices and LeftDevices are device_lists.changed and .left.
	ChangedDevices, LeftDevices []string
	// OneTimeKeyCounts is device_one_time_keys_count.
	OneTimeKeyCounts map[string]int
	// UnusedFallbackKeyTypes is device_unused_fallback_key_types; nil when
	// the server did not report it (an empty, non-nil list means none is
	// left unused).
	UnusedFallbackKeyTypes []string
}

// ToDeviceResult is what became of one to-device event.
//
// Event is set for an event the client may act on: an Olm-encrypted event
// that decrypted and passed the specification's checks (Encrypted is true),
// or an event sent in the clear, as received. Err is set when the event could
// not be decrypted; it matches one of [ErrMalformedToDevice],
// [ErrToDeviceAlgorithm], [ErrNotForThisDevice], [ErrDuplicateOlmMessage],
// [ErrSessionWedged], [ErrInvalidOlmPlaintext] or [ErrToDeviceBatchLimit].
// Both are set for an event that decrypted but carried a room key that was
// refused ([ErrInvalidRoomKey]): the decryption was committed, the key was
// not stored.
type ToDeviceResult struct {
	// Event is the decrypted event: {"type", "content", "sender",
	// "sender_key", "keys": {"ed25519"}}, with the Curve25519 key of the
	// Olm session it came through and the Ed25519 key its plaintext claims.
	// For an event sent in the clear it is the event as received.
	Event json.RawMessage
	// Type and Sender are the event's type (the decrypted type for an
	// encrypted event) and sending user.
	Type, Sender string
	// Encrypted is true for an event that arrived Olm-encrypted.
	Encrypted bool
	// SenderKey is the sender's Curve25519 identity key and SenderEd25519
	// the Ed25519 key the plaintext claims; both empty for cleartext events.
	SenderKey, SenderEd25519 string
	// SenderDevice is the sending device's ID when it is known from a key
	// query (and its Ed25519 key was checked against SenderEd25519).
	SenderDevice string
	// RoomKey describes the room key an m.room_key or m.forwarded_room_key
	// event carried.
	RoomKey *RoomKeyInfo
	// Err says why the event was not decrypted, or why its room key was
	// refused.
	Err error
}

// ErrToDeviceBatchLimit is matched by a [*ToDeviceBatchLimitError].
var ErrToDeviceBatchLimit = errors.New("machine: to-device batch limit reached")

// ToDeviceBatchLimitError reports an event past MaxToDeviceEventsPerBatch:
// it was not processed; hand it again in another call.
type ToDeviceBatchLimitError struct {
	Index, Max int
}

func (e *ToDeviceBatchLimitError) Error() string {
	return fmt.Sprintf("machine: to-device event %d is past the batch limit of %d", e.Index, e.Max)
}

// Is makes errors.Is(err, ErrToDeviceBatchLimit) true.
func (e *ToDeviceBatchLimitError) Is(target error) bool { return target == ErrToDeviceBatchLimit }

// ReceiveSyncChanges processes the crypto part of a sync response: device
// list changes, one-time key counts, and the to-device events, each of which
// it decrypts (Olm), checks and acts on (room keys are stored).
//
// It returns one result per event, in order; an event that cannot be
// decrypted has its reason in its result, never in the returned error. The
// returned error reports a failure of the store (including a lost lease or a
// cancelled ctx); then nothing was changed, no result is returned, and the
// same changes can be handed again.
//
// Everything is one transaction: an event's session change, one-time key
// removal, message hash and room key commit together with the rest of the
// batch or not at all. A message already decrypted (by this or another
// process on the same store) is reported as [ErrDuplicateOlmMessage] and
// never starts unwedging.
func (m *Machine) ReceiveSyncChanges(ctx context.Context, changes SyncChanges) ([]ToDeviceResult, error) {
	// Parse every event first, outside the transaction: parsing needs no
	// state, and the batch's lookup of which messages were decrypted before
	// takes their hashes in one statement.
	parsed := make([]ToDeviceResult, len(changes.ToDeviceEvents))
	events := make([]*olmEvent, len(parsed))
	for i, raw := range changes.ToDeviceEvents {
		if i >= MaxToDeviceEventsPerBatch {
			parsed[i] = ToDeviceResult{Err: &ToDeviceBatchLimitError{Index: i, Max: MaxToDeviceEventsPerBatch}}
			continue
		}
		parsed[i], events[i] = parseToDevice(raw, m.curve25519)
	}
	results := make([]ToDeviceResult, len(parsed))
	receive := func(tx *cryptostore.Tx, lookUpFirst bool) error {
		// Device lists and key counts first: they do not depend on the
		// events, and the events' unwedging may want the devices marked.
		if err := m.markDevicesChanged(tx, changes.ChangedDevices, changes.LeftDevices); err != nil {
			return err
		}
		if err := m.recordOneTimeKeyCounts(tx, changes.OneTimeKeyCounts, changes.UnusedFallbackKeyTypes); err != nil {
			return err
		}
		b := newToDeviceBatch(m, tx, events)
		if lookUpFirst {
			if err := b.lookUpHashes(); err != nil {
				return err
			}
		}
		copy(results, parsed) // afresh on a retried transaction
		for i, ev := range events {
			if ev == nil {
				continue
			}
			res, err := b.receiveEncrypted(ev, results[i])
			if err != nil {
				return err
			}
			results[i] = res
		}
		return b.flush()
	}
	// A batch looks up which of its messages were decrypted before only when
	// it needs to know; should one that was decrypt again all the same, it
	// is undone and run again with the lookup first.
	err := m.store.Update(ctx, "machine: receive sync changes", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		return receive(tx, false)
	})
	if errors.Is(err, errSeenAfterAll) {
		err = m.store.Update(ctx, "machine: receive sync changes", cryptostore.Normal, func(tx *cryptostore.Tx) error {
			return receive(tx, true)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("machine: receive sync changes: %w", err)
	}
	m.maintainIfDue(ctx)
	return results, nil
}

// parseToDevice reads one to-device event. An event sent in the clear, or
// one that is malformed, is done with: its result is final. An
// m.room.encrypted event is returned parsed as far as its ciphertext for
// this device (ourKey), to be decrypted.
func parseToDevice(raw json.RawMessage, ourKey string) (ToDeviceResult, *olmEvent) {
	if len(raw) > MaxEventSize {
		return ToDeviceResult{Err: &MalformedToDeviceError{Field: "size",
			Err: fmt.Errorf("%d bytes, the limit is %d", len(raw), MaxEventSize)}}, nil
	}
	// event_id, room_id and origin_server_ts are not used, but a value of
	// the wrong type makes the event malformed, as for any event.
	var typeJSON, senderJSON, content, eventID, roomID, ts []byte
	err := readObject(raw, jsonMember{"type", &typeJSON}, jsonMember{"sender", &senderJSON},
		jsonMember{"content", &content}, jsonMember{"event_id", &eventID}, jsonMember{"room_id", &roomID},
		jsonMember{"origin_server_ts", &ts})
	typ, typeErr := jsonString(typeJSON)
	sender, senderErr := jsonString(senderJSON)
	_, eventIDErr := jsonString(eventID)
	_, roomIDErr := jsonString(roomID)
	_, tsErr := jsonInt(ts)
	if err := cmp.Or(err, typeErr, senderErr, eventIDErr, roomIDErr, tsErr); err != nil {
		return ToDeviceResult{Err: &MalformedToDeviceError{Field: "event", Err: err}}, nil
	}
	res := ToDeviceResult{Type: typ, Sender: sender}
	switch {
	case typ == "":
		res.Err = &MalformedToDeviceError{Field: "type"}
	case !validUserID(sender):
		res.Err = &MalformedToDeviceError{Field: "sender"}
	case len(content) == 0 || content[0] != '{':
		res.Err = &MalformedToDeviceError{Field: "content"}
	case typ != EventRoomEncrypted:
		// Sent in the clear: passed through. Room keys are only ever taken
		// from Olm-decrypted events, so a cleartext m.room_key is inert.
		res.Event = raw
	default:
		ev, err := parseOlmContent(sender, content, ourKey)
		if err != nil {
			res.Err = err
			return res, nil
		}
		return res, ev
	}
	return res, nil
}

// olmEvent is an m.room.encrypted to-device event parsed as far as its
// ciphertext for this device, with the hash that identifies the message.
type olmEvent struct {
	sender    string // the event's sender
	senderKey string // content.sender_key, as the key's canonical encoding
	curve     olm.Curve25519PublicKey
	typ       olm.MessageType
	body      []byte
	hash      [32]byte
}

// parseOlmContent reads the content of an m.room.encrypted to-device event:
// its algorithm, sender key and the ciphertext for this device (ourKey).
func parseOlmContent(sender string, content []byte, ourKey string) (*olmEvent, error) {
	f, err := readOlmContent(content, ourKey)
	if err != nil {
		return nil, &MalformedToDeviceError{Field: "content", Err: err}
	}
	if f.algorithm != OlmAlgorithm {
		return nil, fmt.Errorf("%w: %.64q", ErrToDeviceAlgorithm, f.algorithm)
	}
	senderCurve, err := olm.ParseCurve25519PublicKey(f.senderKey)
	if err != nil {
		return nil, &MalformedToDeviceError{Field: "content.sender_key", Err: err}
	}
	if !f.forUs {
		return nil, ErrNotForThisDevice
	}
	if f.msgType != int64(olm.MessageTypePreKey) && f.msgType != int64(olm.MessageTypeNormal) {
		return nil, &MalformedToDeviceError{Field: "content.ciphertext.type", Err: fmt.Errorf("type %d", f.msgType)}
	}
	typ := olm.MessageType(f.msgType)
	body, err := jsonBase64(f.body)
	if err != nil {
		return nil, &MalformedToDeviceError{Field: "content.ciphertext.body", Err: err}
	}
	ev := &olmEvent{sender: sender, senderKey: canonicalKey(f.senderKey, senderCurve), curve: senderCurve, typ: typ, body: body}
	ev.hash = cryptostore.OlmMessageHash(ev.senderKey, int(typ), body)
	return ev, nil
}

// canonicalKey returns key in unpadded base64, the form the store keys
// sessions and hashes by: s itself when s is written so, as it nearly
// always is, else a new string.
func canonicalKey(s string, key olm.Curve25519PublicKey) string {
	raw := key.Array()
	var buf [43]byte // 32 bytes in unpadded base64
	if enc := b64.AppendEncode(buf[:0], raw[:]); s != string(enc) {
		return string(enc)
	}
	return s
}

// olmContentFields are the members of Olm content the machine reads.
type olmContentFields struct {
	algorithm, senderKey string
	forUs                bool   // the ciphertext has an entry for this device
	msgType              int64  // that entry's
	body                 []byte // that entry's, as JSON (a string)
}

// readOlmContent reads Olm content, from an event readObject checked.
// Ciphertexts for other devices are only checked to be JSON.
func readOlmContent(content []byte, ourKey string) (olmContentFields, error) {
	var f olmContentFields
	var algorithm, senderKey, ciphertexts, ours, msgType, body []byte
	err := readValidObject(content, jsonMember{"algorithm", &algorithm}, jsonMember{"sender_key", &senderKey},
		jsonMember{"ciphertext", &ciphertexts})
	if err != nil {
		return f, err
	}
	if err := readMemberObject(ciphertexts, jsonMember{ourKey, &ours}); err != nil {
		return f, err
	}
	if err := readMemberObject(ours, jsonMember{"type", &msgType}, jsonMember{"body", &body}); err != nil {
		return f, err
	}
	f.forUs = ours != nil
	if f.algorithm, err = jsonStringWant(algorithm, OlmAlgorithm); err != nil {
		return f, err
	}
	if f.senderKey, err = jsonString(senderKey); err != nil {
		return f, err
	}
	if f.msgType, err = jsonInt(msgType); err != nil {
		return f, err
	}
	if body != nil && body[0] != '"' && string(body) != "null" {
		return f, &jsonError{Offset: -1, Msg: "want a string, got " + jsonKind(body)}
	}
	f.body = body
	return f, nil
}

// receiveEncrypted decrypts an m.room.encrypted to-device event and acts on
// its plaintext. The returned error is a store failure, which aborts the
// batch; everything about the event itself is in the result.
func (b *toDeviceBatch) receiveEncrypted(ev *olmEvent, res ToDeviceResult) (ToDeviceResult, error) {
	dec, err := b.decryptOlm(ev)
	if err != nil {
		if !isReason(err) {
			return res, err
		}
		res.Err = err
		return res, nil
	}
	res.Type, res.Encrypted = dec.plaintext.Type, true
	res.SenderKey, res.SenderEd25519 = dec.senderKey, dec.plaintext.Keys.Ed25519
	res.SenderDevice = dec.device.DeviceID
	res.Event = decryptedToDeviceJSON(ev.sender, dec)
	switch dec.plaintext.Type {
	case EventRoomKey:
		res.RoomKey, err = b.m.storeRoomKey(b.tx, dec)
	case EventForwardedRoomKey:
		res.RoomKey, err = b.m.storeForwardedRoomKey(b.tx, ev.sender, dec)
	}
	if err != nil {
		if !isReason(err) {
			return res, err
		}
		res.Err = err
	}
	return res, nil
}

// decryptedToDevice is the JSON of a decrypted to-device event as reported
// in [ToDeviceResult.Event], which decryptedToDeviceJSON writes.
type decryptedToDevice struct {
	Type      string          `json:"type"`
	Content   json.RawMessage `json:"content"`
	Sender    string          `json:"sender"`
	SenderKey string          `json:"sender_key"`
	Keys      ed25519Key      `json:"keys"`
}

// decryptedToDeviceJSON writes a decrypted event as decryptedToDevice
// marshals, without reflection: the content is the plaintext's, as sent.
func decryptedToDeviceJSON(sender string, dec *decryptedOlm) json.RawMessage {
	p := dec.plaintext
	b := make([]byte, 0, 96+len(p.Type)+len(p.Content)+len(sender)+len(dec.senderKey)+len(p.Keys.Ed25519))
	b = appendJSONString(append(b, `{"type":`...), p.Type)
	b = append(append(b, `,"content":`...), p.Content...)
	b = appendJSONString(append(b, `,"sender":`...), sender)
	b = appendJSONString(append(b, `,"sender_key":`...), dec.senderKey)
	b = appendJSONString(append(b, `,"keys":{"ed25519":`...), p.Keys.Ed25519)
	return append(b, "}}"...)
}

// isReason tells an event's typed reason from a store failure.
func isReason(err error) bool {
	for _, r := range []error{ErrMalformedToDevice, ErrToDeviceAlgorithm, ErrNotForThisDevice,
		ErrDuplicateOlmMessage, ErrSessionWedged, ErrInvalidOlmPlaintext, ErrInvalidRoomKey} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}
