// Package wire encodes and decodes the binary messages of Olm and Megolm: a
// version byte followed by protobuf-style fields (PROTOCOL.md §1, §2.6, §3.2).
//
// Decoders are all-or-nothing: on error they return no partial value. They
// accept fields in any order and skip unknown varint and length-delimited
// fields, as libolm does, but reject truncation, non-canonical varints,
// duplicated known fields and unknown wire types.
package wire

import (
	"errors"
	"fmt"
)

// Wire types of the protobuf-style encoding.
const (
	typeVarint = 0
	typeBytes  = 2
)

// ErrTruncated reports input that ends inside a field.
var ErrTruncated = errors.New("wire: truncated input")

// DecodeError describes why a message failed to decode.
type DecodeError struct {
	Message string // "olm message", "pre-key message", "megolm message"
	Reason  string
}

func (e *DecodeError) Error() string { return "wire: invalid " + e.Message + ": " + e.Reason }

// ErrDecode is matched by every *DecodeError through errors.Is.
var ErrDecode = errors.New("wire: invalid message")

// Is makes errors.Is(err, ErrDecode) true for every DecodeError.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

func decodeErr(msg, format string, args ...any) error {
	return &DecodeError{Message: msg, Reason: fmt.Sprintf(format, args...)}
}

// appendVarint appends v in base-128 little-endian form.
func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// varintLen is the encoded length of v.
func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// readVarint reads a canonical varint of at most 10 bytes. It returns the
// value and the number of bytes read, or n == 0 on error.
func readVarint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for i, c := range b {
		if i == 10 || (i == 9 && c > 1) {
			return 0, 0, errors.New("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errors.New("non-canonical varint")
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, ErrTruncated
}

// field is one decoded field of a message body.
type field struct {
	num   uint64
	wire  uint64
	value uint64 // typeVarint
	bytes []byte // typeBytes, aliasing the input
}

// forEachField walks the fields of body, calling fn for each. Unknown field
// numbers are passed to fn too; fn decides what to keep.
func forEachField(body []byte, fn func(f field) error) error {
	for len(body) > 0 {
		tag, n, err := readVarint(body)
		if err != nil {
			return err
		}
		body = body[n:]
		f := field{num: tag >> 3, wire: tag & 7}
		switch f.wire {
		case typeVarint:
			f.value, n, err = readVarint(body)
			if err != nil {
				return err
			}
			body = body[n:]
		case typeBytes:
			l, n, err := readVarint(body)
			if err != nil {
				return err
			}
			body = body[n:]
			if l > uint64(len(body)) {
				return ErrTruncated
			}
			f.bytes = body[:l:l]
			body = body[l:]
		default:
			return fmt.Errorf("unsupported wire type %d", f.wire)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// appendBytesField appends a length-delimited field.
func appendBytesField(b []byte, num uint64, v []byte) []byte {
	b = appendVarint(b, num<<3|typeBytes)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendVarintField appends a varint field. It is always emitted, even for 0:
// libolm rejects messages that lack the counter or index (PROTOCOL.md §1).
func appendVarintField(b []byte, num, v uint64) []byte {
	b = appendVarint(b, num<<3|typeVarint)
	return appendVarint(b, v)
}
