// Package b64 is the base64 dialect of Olm, Megolm and Matrix: unpadded standard
// base64 on output, and on input the same with padding tolerated (the Matrix spec
// says implementations SHOULD accept it).
package b64

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
)

// ErrInvalid reports input that is not base64 in the accepted dialect.
var ErrInvalid = errors.New("base64: invalid encoding")

var (
	raw    = base64.RawStdEncoding.Strict()
	padded = base64.StdEncoding.Strict()
)

// encodingFor picks the decoder: correctly padded input is accepted as such,
// anything else must be unpadded.
func encodingFor(padding bool) *base64.Encoding {
	if padding {
		return padded
	}
	return raw
}

// Encode returns the unpadded standard base64 encoding of b.
func Encode(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// AppendEncode appends the unpadded standard base64 encoding of b to dst.
func AppendEncode(dst, b []byte) []byte { return base64.RawStdEncoding.AppendEncode(dst, b) }

// Decode decodes s. Correct padding is tolerated; excess padding,
// whitespace, other alphabets and non-zero trailing bits are not.
func Decode(s string) ([]byte, error) {
	if strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		return nil, ErrInvalid // encoding/base64 skips newlines; Matrix never has them
	}
	b, err := encodingFor(strings.HasSuffix(s, "=")).DecodeString(s)
	if err != nil {
		return nil, ErrInvalid
	}
	return b, nil
}

// DecodeBytes is [Decode] for a byte slice, without an intermediate string.
func DecodeBytes(s []byte) ([]byte, error) {
	if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return nil, ErrInvalid
	}
	enc := encodingFor(bytes.HasSuffix(s, []byte("=")))
	out := make([]byte, enc.DecodedLen(len(s)))
	n, err := enc.Decode(out, s)
	if err != nil {
		return nil, ErrInvalid
	}
	return out[:n], nil
}

// DecodeFixed decodes s into exactly n bytes.
func DecodeFixed(s string, n int) ([]byte, error) {
	b, err := Decode(s)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, ErrInvalid
	}
	return b, nil
}
