package machine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/xolm/xolm/internal/b64"
)

// The machine's hot paths read a few members of JSON objects whose shape the
// specification fixes: a to-device event, its Olm content, a decrypted Olm
// payload, a room event and its Megolm payload. readObject checks that a
// text is one JSON object (RFC 8259) and picks out the raw values of the
// named members in one pass, building no maps and reflecting over no types.
//
// It is stricter than encoding/json, never more lenient: text that is not
// valid UTF-8 is refused (encoding/json replaces the bad bytes), member
// names match exactly (encoding/json also matches them case-insensitively),
// and a named member given twice is refused (encoding/json keeps the last),
// so that two readers of one event can never see different values.

// jsonMember names an object member to pick out; readObject points val at
// its raw value, or leaves it nil when the member is absent.
type jsonMember struct {
	name string
	val  *[]byte
}

// jsonError reports text that is not the JSON a field must hold: invalid
// JSON, a member given twice, or a value of the wrong type.
type jsonError struct {
	Offset int // in the text read, for invalid JSON
	Msg    string
}

func (e *jsonError) Error() string {
	if e.Offset < 0 {
		return "json: " + e.Msg
	}
	return fmt.Sprintf("json: %s at offset %d", e.Msg, e.Offset)
}

// readObject reads data, which must be one JSON object with nothing but
// whitespace around it, and sets the values of the members asked for. The
// values alias data. Nesting is bounded by the text's length, which callers
// bound (MaxEventSize).
func readObject(data []byte, members ...jsonMember) error {
	return readObjectFrom(jsonReader{data: data}, members)
}

// readValidObject is readObject for a value picked out of a text that
// readObject already checked: the check of the strings' bytes, the bulk of
// the work, is not done again.
func readValidObject(data []byte, members ...jsonMember) error {
	return readObjectFrom(jsonReader{data: data, valid: true}, members)
}

func readObjectFrom(r jsonReader, members []jsonMember) error {
	r.space()
	if r.peek() != '{' {
		return r.fail("want an object")
	}
	if err := r.object(members); err != nil {
		return err
	}
	r.space()
	if r.pos != len(r.data) {
		return r.fail("data after the object")
	}
	return nil
}

// readMemberObject reads the members of a member's value (from a text
// readObject checked), which must be an object when it is present and not
// null, as encoding/json reads a map or a struct.
func readMemberObject(raw []byte, members ...jsonMember) error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		return &jsonError{Offset: -1, Msg: "want an object, got " + jsonKind(raw)}
	}
	return readValidObject(raw, members...)
}

// jsonString returns a string member's value: "" when it is absent or
// null, as encoding/json leaves a string, and an error for another type.
func jsonString(raw []byte) (string, error) {
	switch {
	case raw == nil || string(raw) == "null":
		return "", nil
	case raw[0] != '"':
		return "", &jsonError{Offset: -1, Msg: "want a string, got " + jsonKind(raw)}
	case bytes.IndexByte(raw, '\\') < 0:
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s) // rare: escapes
	return s, err
}

// jsonStringWant is jsonString for a member the caller compares with want:
// a value that is want, written without escapes as it nearly always is,
// comes back as want itself, not as a copy.
func jsonStringWant(raw []byte, want string) (string, error) {
	if len(raw) == len(want)+2 && raw[0] == '"' && string(raw[1:len(raw)-1]) == want &&
		strings.IndexByte(want, '\\') < 0 {
		return want, nil
	}
	return jsonString(raw)
}

// jsonInt returns an integer member's value: 0 when it is absent or null,
// and an error for another type or a number that is not an int64.
func jsonInt(raw []byte) (int64, error) {
	if raw == nil || string(raw) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, &jsonError{Offset: -1, Msg: "want an integer, got " + jsonKind(raw)}
	}
	return n, nil
}

// jsonBase64 decodes a string member holding base64 (b64.Decode's rules),
// without copying it into a string first when it has no escapes. Absent or
// null, it is empty.
func jsonBase64(raw []byte) ([]byte, error) {
	if len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
		return b64.DecodeBytes(raw[1 : len(raw)-1])
	}
	s, err := jsonString(raw)
	if err != nil {
		return nil, err
	}
	return b64.Decode(s)
}

// jsonKind names the type of a raw JSON value, for errors.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "the number " + string(raw[:min(len(raw), 24)])
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires; bytes that are not UTF-8 become U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		case c < utf8.RuneSelf:
			b = append(b, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return append(b, '"')
}
