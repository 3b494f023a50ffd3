// Package canonicaljson encodes JSON in the Matrix specification's canonical
// form and signs and verifies JSON objects the way Matrix does (spec
// appendices "Signing JSON"; PROTOCOL.md §5).
//
// Canonical JSON is the shortest UTF-8 encoding of a value: no insignificant
// whitespace, object keys sorted by Unicode code point, strings with only the
// escapes the spec's grammar allows (\" \\ \b \f \n \r \t, other control
// characters as \u00xx in lowercase hex; '/', '<', '>', '&', U+2028, U+2029 and
// all non-ASCII characters appear as themselves), and numbers as integers in
// [-(2^53-1), 2^53-1] without sign for zero, fraction or exponent.
//
// # Input
//
// [Canonicalize] is strict about what it reads, because what it writes is
// signed: input that is not valid UTF-8, a string escape that is an unpaired
// UTF-16 surrogate (which UTF-8 cannot encode), an object with the same key
// twice, or a number that is not an integer in range is an error, never
// silently repaired. A number written with an exponent or a zero fraction
// (1e10, 2.0, -0) denotes an integer and is accepted and written in its
// canonical form, as the spec's own example ({"a":-0,"b":1e10} →
// {"a":0,"b":10000000000}) requires. Input size and nesting depth are bounded
// by [MaxInputSize] and [MaxDepth].
package canonicaljson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxInputSize bounds the JSON text [Canonicalize] reads, and so its work and
// memory. The objects Matrix signs (device keys, cross-signing keys, one-time
// keys, the Olm plaintext with its sender_device_keys) are a few KiB; 1 MiB is
// sixteen times the 65,536-byte limit the spec puts on a whole event.
const MaxInputSize = 1 << 20

// MaxDepth bounds how deeply arrays and objects may nest. Signed Matrix objects
// nest four or five levels; serde_json, which matrix-rust-sdk decodes with,
// stops at 128.
const MaxDepth = 64

// Errors. Each error returned by this package matches one of these with
// errors.Is.
var (
	// ErrSyntax reports text that is not JSON, or has data after the value.
	ErrSyntax = errors.New("canonicaljson: invalid JSON")
	// ErrInvalidUTF8 reports text that is not valid UTF-8, or a string escape
	// that is an unpaired UTF-16 surrogate.
	ErrInvalidUTF8 = errors.New("canonicaljson: invalid UTF-8")
	// ErrDuplicateKey is matched by every *DuplicateKeyError.
	ErrDuplicateKey = errors.New("canonicaljson: duplicate object key")
	// ErrNumber is matched by every *NumberError.
	ErrNumber = errors.New("canonicaljson: number out of the canonical range")
	// ErrLimit is matched by every *LimitError.
	ErrLimit = errors.New("canonicaljson: limit exceeded")
	// ErrNotObject reports JSON that must be an object and is not: the value
	// given to [Sign] or [Verify], or its "signatures" member or an entity's
	// entry in it when [Sign] must add to them.
	ErrNotObject = errors.New("canonicaljson: not a JSON object")
)

// DuplicateKeyError reports an object with the same key twice (after
// unescaping: "a" and "\u0061" are the same key). It matches ErrDuplicateKey.
type DuplicateKeyError struct {
	Key string
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("canonicaljson: duplicate object key %q", shorten(e.Key))
}

// Is makes errors.Is(err, ErrDuplicateKey) true.
func (e *DuplicateKeyError) Is(target error) bool { return target == ErrDuplicateKey }

// NumberError reports a number that is not an integer in [-(2^53-1), 2^53-1]:
// a fraction, or an integer too large in magnitude. It matches ErrNumber.
type NumberError struct {
	Literal string // the number as written in the input
}

func (e *NumberError) Error() string {
	return fmt.Sprintf("canonicaljson: number %s is not an integer in [-(2^53-1), 2^53-1]", shorten(e.Literal))
}

// Is makes errors.Is(err, ErrNumber) true.
func (e *NumberError) Is(target error) bool { return target == ErrNumber }

// LimitError reports input over one of the package's limits: "size" (bytes,
// [MaxInputSize]) or "depth" (nesting, [MaxDepth]). It matches ErrLimit.
type LimitError struct {
	Limit string
	Value int
	Max   int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("canonicaljson: %s %d exceeds the limit of %d", e.Limit, e.Value, e.Max)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// shorten keeps error messages short when they quote attacker-chosen text.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Marshal encodes v with encoding/json and returns its canonical form. As
// with encoding/json, invalid UTF-8 in Go strings becomes U+FFFD; floating
// point values are accepted only when they are integers in range.
func Marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonicaljson: %w", err)
	}
	return Canonicalize(raw)
}

// Canonicalize returns the canonical form of the JSON text raw, or an error
// matching one of the package's sentinels. The result is a fresh slice.
func Canonicalize(raw []byte) ([]byte, error) {
	v, err := parse(raw)
	if err != nil {
		return nil, err
	}
	return appendValue(make([]byte, 0, len(raw)), v), nil
}

// The parsed form of a JSON value: nil, bool, string, number, []any or
// object. Numbers are held in canonical form; objects keep their members
// sorted by key.
type (
	number string
	object []member
	member struct {
		key string
		val any
	}
)

// parse reads exactly one JSON value from raw under the package's rules.
func parse(raw []byte) (any, error) {
	if len(raw) > MaxInputSize {
		return nil, &LimitError{Limit: "size", Value: len(raw), Max: MaxInputSize}
	}
	if !utf8.Valid(raw) {
		return nil, ErrInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the top-level value", ErrSyntax)
	}
	// The decoder turns an unpaired surrogate escape into U+FFFD; find them in
	// the text, which is now known to be valid JSON.
	if err := checkSurrogates(raw); err != nil {
		return nil, err
	}
	return v, nil
}

// readValue reads the value whose first token is next; depth counts the
// arrays and objects it sits in.
func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > MaxDepth {
			return nil, &LimitError{Limit: "depth", Value: depth + 1, Max: MaxDepth}
		}
		if t == '{' {
			return readObject(dec, depth+1)
		}
		return readArray(dec, depth+1) // the decoder only yields '[' here
	case json.Number:
		return canonicalNumber(string(t))
	case string, bool, nil:
		return t, nil
	}
	panic(fmt.Sprintf("canonicaljson: internal error: unexpected token %T", tok))
}

func readObject(dec *json.Decoder, depth int) (any, error) {
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: object key is not a string", ErrSyntax)
		}
		val, err := readValue(dec, depth)
		if err != nil {
			return nil, err
		}
		o = append(o, member{key, val})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxError(err)
	}
	// Go compares strings byte by byte, and the byte order of UTF-8 is the
	// order of the code points it encodes.
	slices.SortStableFunc(o, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for i := 1; i < len(o); i++ {
		if o[i].key == o[i-1].key {
			return nil, &DuplicateKeyError{Key: o[i].key}
		}
	}
	return o, nil
}

func readArray(dec *json.Decoder, depth int) (any, error) {
	a := []any{}
	for dec.More() {
		val, err := readValue(dec, depth)
		if err != nil {
			return nil, err
		}
		a = append(a, val)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, syntaxError(err)
	}
	return a, nil
}

func syntaxError(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: unexpected end of input", ErrSyntax)
	}
	return fmt.Errorf("%w: %v", ErrSyntax, err)
}

// checkSurrogates reports a \u escape in a string of the valid JSON text raw
// that is half of a UTF-16 surrogate pair without the other half.
func checkSurrogates(raw []byte) error {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			i++
			if raw[i] != 'u' {
				continue
			}
			r := hex4(raw[i+1 : i+5])
			i += 4
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return fmt.Errorf("%w: unpaired surrogate \\u%04x", ErrInvalidUTF8, r)
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if lo := hex4(raw[i+3 : i+7]); lo >= 0xDC00 && lo <= 0xDFFF {
						i += 6
						continue
					}
				}
				return fmt.Errorf("%w: unpaired surrogate \\u%04x", ErrInvalidUTF8, r)
			}
		}
	}
	return nil
}

// hex4 decodes four hexadecimal digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}
