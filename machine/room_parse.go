package machine

import (
	"bytes"
	"fmt"

	"github.com/xolm/xolm/internal/b64"
)

// Reading encrypted room events and their decrypted payloads, one pass per
// JSON layer (readObject).

// roomEnvelope is an encrypted room event as received.
type roomEnvelope struct {
	Type, Sender, EventID, RoomID string
	OriginServerTS                int64
	Content                       megolmContent
}

// parseRoomEvent checks an encrypted room event's envelope and content and
// returns them with the raw Megolm message.
func parseRoomEvent(roomID string, event []byte) (*roomEnvelope, []byte, error) {
	if len(event) > MaxEventSize {
		return nil, nil, &MalformedRoomEventError{Field: "size",
			Err: fmt.Errorf("%d bytes, at most %d", len(event), MaxEventSize)}
	}
	var env roomEnvelope
	field, err := readRoomEnvelope(event, &env)
	if err != nil && field == "" {
		return nil, nil, &MalformedRoomEventError{Field: "json", Err: err}
	}
	c := &env.Content
	switch {
	case env.Type != EventRoomEncrypted:
		return nil, nil, &MalformedRoomEventError{Field: "type", Err: fmt.Errorf("%q", env.Type)}
	case env.EventID == "":
		return nil, nil, &MalformedRoomEventError{Field: "event_id"}
	case env.Sender == "":
		return nil, nil, &MalformedRoomEventError{Field: "sender"}
	case env.RoomID != "" && env.RoomID != roomID:
		return nil, nil, &RoomMismatchError{Want: roomID, Got: env.RoomID}
	// The algorithm decides before the other fields: an Olm content, with
	// an object for ciphertext, is of an unsupported algorithm.
	case c.Algorithm != MegolmAlgorithm && (err == nil || c.Algorithm != ""):
		return nil, nil, fmt.Errorf("%w: %q", ErrUnsupportedRoomAlgorithm, c.Algorithm)
	case err != nil:
		return nil, nil, &MalformedRoomEventError{Field: field, Err: err}
	case c.SessionID == "":
		return nil, nil, &MalformedRoomEventError{Field: "content.session_id"}
	}
	ciphertext, err := b64.Decode(c.Ciphertext)
	if err != nil {
		return nil, nil, &MalformedRoomEventError{Field: "content.ciphertext", Err: err}
	}
	return &env, ciphertext, nil
}

// readRoomEnvelope reads a room event's envelope and Megolm content. Text
// that is not a JSON object is an error with no field. As encoding/json
// does, a member of the wrong type leaves the others read: the first such
// member is named by field ("origin_server_ts", "content.session_id", …).
func readRoomEnvelope(event []byte, env *roomEnvelope) (field string, err error) {
	var typ, sender, eventID, roomID, ts, content []byte
	if err := readObject(event, jsonMember{"type", &typ}, jsonMember{"sender", &sender},
		jsonMember{"event_id", &eventID}, jsonMember{"room_id", &roomID},
		jsonMember{"origin_server_ts", &ts}, jsonMember{"content", &content}); err != nil {
		return "", err
	}
	var r fieldReader
	r.str(&env.Type, "type", typ)
	r.str(&env.Sender, "sender", sender)
	r.str(&env.EventID, "event_id", eventID)
	r.str(&env.RoomID, "room_id", roomID)
	r.int64(&env.OriginServerTS, "origin_server_ts", ts)
	var algorithm, senderKey, deviceID, sessionID, ciphertext []byte
	if err := readMemberObject(content, jsonMember{"algorithm", &algorithm}, jsonMember{"sender_key", &senderKey},
		jsonMember{"device_id", &deviceID}, jsonMember{"session_id", &sessionID},
		jsonMember{"ciphertext", &ciphertext}); err != nil {
		r.fail("content", err)
		return r.field, r.err
	}
	c := &env.Content
	r.str(&c.Algorithm, "content.algorithm", algorithm)
	r.str(&c.SenderKey, "content.sender_key", senderKey)
	r.str(&c.DeviceID, "content.device_id", deviceID)
	r.str(&c.SessionID, "content.session_id", sessionID)
	r.str(&c.Ciphertext, "content.ciphertext", ciphertext)
	return r.field, r.err
}

// fieldReader converts members' raw values, keeping the first failure and
// the field it was in.
type fieldReader struct {
	field string
	err   error
}

func (r *fieldReader) fail(field string, err error) {
	if r.err == nil {
		r.field, r.err = field, err
	}
}

func (r *fieldReader) str(dst *string, field string, raw []byte) {
	s, err := jsonString(raw)
	if err != nil {
		r.fail(field, err)
		return
	}
	*dst = s
}

func (r *fieldReader) int64(dst *int64, field string, raw []byte) {
	n, err := jsonInt(raw)
	if err != nil {
		r.fail(field, err)
		return
	}
	*dst = n
}

// parseMegolmPlaintext reads a decrypted room event's payload. The content
// is a copy: the plaintext is cleared after use.
func parseMegolmPlaintext(plaintext []byte) (*megolmPlaintext, error) {
	var typ, content, roomID []byte
	err := readObject(plaintext, jsonMember{"type", &typ}, jsonMember{"content", &content},
		jsonMember{"room_id", &roomID})
	if err != nil {
		return nil, err
	}
	p := &megolmPlaintext{Content: bytes.Clone(content)}
	if p.Type, err = jsonString(typ); err != nil {
		return nil, err
	}
	p.RoomID, err = jsonString(roomID)
	return p, err
}
