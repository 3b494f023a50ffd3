package machine

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// The one-pass readers give every event the outcome encoding/json's reading
// gave it before them, except where readObject is stricter by design
// (invalid UTF-8, member names differing only in case, a member given twice),
// where to-device ciphertexts for other devices are no longer decoded, and
// where an "event" that is not an object is malformed JSON rather than an
// event without a type.
// These tests compare them with encoding/json-based references on seeds and
// under fuzzing.

// refRoomEnvelope is the room event as encoding/json read it.
type refRoomEnvelope struct {
	Type           string        `json:"type"`
	Sender         string        `json:"sender"`
	EventID        string        `json:"event_id"`
	RoomID         string        `json:"room_id"`
	OriginServerTS int64         `json:"origin_server_ts"`
	Content        megolmContent `json:"content"`
}

// refParseRoomEvent is parseRoomEvent as it was with encoding/json.
func refParseRoomEvent(roomID string, event []byte) (*roomEnvelope, []byte, error) {
	var ref refRoomEnvelope
	err := json.Unmarshal(event, &ref)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) || notObject(event) {
		return nil, nil, &MalformedRoomEventError{Field: "json", Err: err}
	}
	env := roomEnvelope(ref)
	c := &env.Content
	switch {
	case env.Type != EventRoomEncrypted:
		return nil, nil, &MalformedRoomEventError{Field: "type"}
	case env.EventID == "":
		return nil, nil, &MalformedRoomEventError{Field: "event_id"}
	case env.Sender == "":
		return nil, nil, &MalformedRoomEventError{Field: "sender"}
	case env.RoomID != "" && env.RoomID != roomID:
		return nil, nil, &RoomMismatchError{Want: roomID, Got: env.RoomID}
	case c.Algorithm != MegolmAlgorithm && (err == nil || c.Algorithm != ""):
		return nil, nil, ErrUnsupportedRoomAlgorithm
	case err != nil:
		return nil, nil, &MalformedRoomEventError{Field: typeErr.Field, Err: err}
	case c.SessionID == "":
		return nil, nil, &MalformedRoomEventError{Field: "content.session_id"}
	}
	ciphertext, err := b64.Decode(c.Ciphertext)
	if err != nil {
		return nil, nil, &MalformedRoomEventError{Field: "content.ciphertext", Err: err}
	}
	return &env, ciphertext, nil
}

// refParseToDevice is parseToDevice as it was with encoding/json, but for
// ciphertexts of other devices, which it no longer decodes.
func refParseToDevice(raw json.RawMessage, ourKey string) (ToDeviceResult, *olmEvent) {
	if len(raw) > MaxEventSize {
		return ToDeviceResult{Err: &MalformedToDeviceError{Field: "size"}}, nil
	}
	var ev rawEvent
	if err := json.Unmarshal(raw, &ev); err != nil || notObject(raw) {
		return ToDeviceResult{Err: &MalformedToDeviceError{Field: "event", Err: err}}, nil
	}
	res := ToDeviceResult{Type: ev.Type, Sender: ev.Sender}
	switch {
	case ev.Type == "":
		res.Err = &MalformedToDeviceError{Field: "type"}
	case !validUserID(ev.Sender):
		res.Err = &MalformedToDeviceError{Field: "sender"}
	case len(ev.Content) == 0 || ev.Content[0] != '{':
		res.Err = &MalformedToDeviceError{Field: "content"}
	case ev.Type != EventRoomEncrypted:
		res.Event = raw
	default:
		var c struct {
			Algorithm  string                     `json:"algorithm"`
			SenderKey  string                     `json:"sender_key"`
			Ciphertext map[string]json.RawMessage `json:"ciphertext"`
		}
		var ct olmCiphertext
		err := json.Unmarshal(ev.Content, &c)
		ours, ok := c.Ciphertext[ourKey]
		if err == nil && ok {
			err = json.Unmarshal(ours, &ct)
		}
		if err != nil {
			res.Err = &MalformedToDeviceError{Field: "content", Err: err}
			return res, nil
		}
		if c.Algorithm != OlmAlgorithm {
			res.Err = ErrToDeviceAlgorithm
			return res, nil
		}
		curve, err := olm.ParseCurve25519PublicKey(c.SenderKey)
		switch {
		case err != nil:
			res.Err = &MalformedToDeviceError{Field: "content.sender_key"}
		case !ok:
			res.Err = ErrNotForThisDevice
		case ct.Type != 0 && ct.Type != 1:
			res.Err = &MalformedToDeviceError{Field: "content.ciphertext.type"}
		}
		if res.Err != nil {
			return res, nil
		}
		body, err := b64.Decode(ct.Body)
		if err != nil {
			res.Err = &MalformedToDeviceError{Field: "content.ciphertext.body"}
			return res, nil
		}
		e := &olmEvent{sender: ev.Sender, senderKey: curve.String(), curve: curve, typ: olm.MessageType(ct.Type), body: body}
		e.hash = cryptostore.OlmMessageHash(e.senderKey, ct.Type, body)
		return res, e
	}
	return res, nil
}

// notObject reports JSON text that is not an object (null, an array, …):
// encoding/json let it through, to fail as an event without a type; the
// readers call it malformed JSON.
func notObject(text []byte) bool {
	return json.Valid(text) && !bytes.HasPrefix(bytes.TrimLeft(text, " \t\r\n"), []byte("{"))
}

// readerStricter reports whether text is where readObject is stricter than
// encoding/json by design: not UTF-8, or an object anywhere with a member
// given twice or names that differ only in case from another or from one
// the machine reads.
func readerStricter(text []byte) bool {
	if !utf8.Valid(text) {
		return true
	}
	read := []string{"type", "sender", "content", "event_id", "room_id", "origin_server_ts", "algorithm",
		"sender_key", "device_id", "session_id", "ciphertext", "body"}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case map[string]any:
			for k, e := range v {
				for _, r := range read {
					if strings.EqualFold(k, r) && k != r {
						return true
					}
				}
				if walk(e) {
					return true
				}
			}
		}
		return false
	}
	var v any
	if json.Unmarshal(text, &v) != nil {
		return false // invalid for both
	}
	return walk(v) || hasRepeatedMember(text)
}

// hasRepeatedMember reports whether an object in text has a member twice.
func hasRepeatedMember(text []byte) bool {
	d := json.NewDecoder(bytes.NewReader(text))
	var keys []map[string]bool // per open object; nil for an array
	expectKey := false
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				keys, expectKey = append(keys, map[string]bool{}), true
				continue
			case '[':
				keys = append(keys, nil)
			case '}', ']':
				keys = keys[:len(keys)-1]
			}
		case string:
			if expectKey {
				if keys[len(keys)-1][tok] {
					return true
				}
				keys[len(keys)-1][tok] = true
				expectKey = false
				continue
			}
		}
		expectKey = len(keys) > 0 && keys[len(keys)-1] != nil
	}
}

// sameOutcome compares two errors by what a caller branches on.
func sameOutcome(a, b error) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	var ma, mb *MalformedRoomEventError
	if errors.As(a, &ma) {
		return errors.As(b, &mb) && ma.Field == mb.Field
	}
	var ta, tb *MalformedToDeviceError
	if errors.As(a, &ta) {
		return errors.As(b, &tb) && ta.Field == tb.Field
	}
	for _, kind := range []error{ErrRoomMismatch, ErrUnsupportedRoomAlgorithm, ErrToDeviceAlgorithm, ErrNotForThisDevice} {
		if errors.Is(a, kind) {
			return errors.Is(b, kind)
		}
	}
	return a == nil
}

// checkParity compares both readers on one text.
func checkParity(t *testing.T, text []byte) {
	if readerStricter(text) {
		return
	}
	const room, ourKey = "!room:example.org", "a2V5MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnM"
	env, ct, err := parseRoomEvent(room, text)
	refEnv, refCT, refErr := refParseRoomEvent(room, text)
	if !sameOutcome(err, refErr) || !reflect.DeepEqual(env, refEnv) || !bytes.Equal(ct, refCT) {
		t.Fatalf("room event %q:\n got %+v, %v\nwant %+v, %v", text, env, err, refEnv, refErr)
	}
	res, ev := parseToDevice(text, ourKey)
	refRes, refEv := refParseToDevice(text, ourKey)
	if !sameOutcome(res.Err, refRes.Err) || res.Type != refRes.Type || res.Sender != refRes.Sender ||
		!bytes.Equal(res.Event, refRes.Event) || !reflect.DeepEqual(ev, refEv) {
		t.Fatalf("to-device event %q:\n got %+v %+v\nwant %+v %+v", text, res, ev, refRes, refEv)
	}
}

// parityCorpus is a spread of well-formed and malformed events.
func parityCorpus() [][]byte {
	const ourKey = "a2V5MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnM"
	megolm := `{"algorithm":"m.megolm.v1.aes-sha2","session_id":"S","ciphertext":"AwgAEhA","sender_key":"k","device_id":"D"}`
	olmC := `{"algorithm":"m.olm.v1.curve25519-aes-sha2","sender_key":"` + ourKey + `","ciphertext":{"` + ourKey +
		`":{"type":1,"body":"AwogAA"},"other":{"type":"x"}}}`
	var out [][]byte
	for _, s := range []string{
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","origin_server_ts":5,"content":` + megolm + `}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","room_id":"!room:example.org","content":` + megolm + `}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","room_id":"!x:y","content":` + megolm + `}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","origin_server_ts":1.5,"content":` + megolm + `}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2","ciphertext":{}}}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","content":{"algorithm":5,"session_id":"S"}}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","content":{"algorithm":"m.megolm.v1.aes-sha2","session_id":7}}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","content":[1]}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","content":null}`,
		`{"type":"m.room.encrypted","event_id":"$e","sender":"@a:b","content":{"algorithm":"m.megolm.v1.aes-sha2","session_id":"S","ciphertext":"!!"}}`,
		`{"type":"m.room.encrypted","sender":"@alice:example.org","content":` + olmC + `}`,
		`{"type":"m.room.encrypted","sender":"@alice:example.org","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2","sender_key":"` + ourKey + `","ciphertext":null}}`,
		`{"type":"m.room.encrypted","sender":"@alice:example.org","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2","sender_key":"` + ourKey + `","ciphertext":{"` + ourKey + `":null}}}`,
		`{"type":"m.room.encrypted","sender":"@alice:example.org","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2","sender_key":"` + ourKey + `","ciphertext":{"` + ourKey + `":{"type":2,"body":"AA"}}}}`,
		`{"type":"m.room.encrypted","sender":"@alice:example.org","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2","sender_key":"` + ourKey + `","ciphertext":{"` + ourKey + `":{"type":"1","body":"AA"}}}}`,
		`{"type":"m.room.encrypted","sender":"@alice:example.org","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2","sender_key":"bad","ciphertext":"x"}}`,
		`{"type":"m.room.encrypted","sender":"@alice:example.org","content":{"algorithm":"m.olm.v1.curve25519-aes-sha2","sender_key":"` + ourKey + `","ciphertext":{"` + ourKey + `":{"type":0,"body":"A\u0041"}}}}`,
		`{"type":"m.test","sender":"@alice:example.org","content":{"a":[1,{"b":null}]}}`,
		`{"type":"m.test","sender":"alice","content":{}}`,
		`{"type":"","sender":"@alice:example.org","content":{}}`,
		`{"type":"m.test","sender":"@alice:example.org","content":"x"}`,
		`{"type":5}`, `[]`, `{"type":"m.test"`, `{} x`, `  {"type":"m.t\u0065st","sender":"@a:b","content":{}}  `,
	} {
		out = append(out, []byte(s))
	}
	return out
}

func TestReadersMatchEncodingJSON(t *testing.T) {
	for _, text := range parityCorpus() {
		checkParity(t, text)
	}
}

func FuzzReadersMatchEncodingJSON(f *testing.F) {
	for _, text := range parityCorpus() {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%q: panic %v", text, r)
			}
		}()
		checkParity(t, text)
	})
}
