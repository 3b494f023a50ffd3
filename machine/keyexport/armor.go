package keyexport

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/xolm/xolm/internal/b64"
)

// The lines around the base64 payload (spec "Key exports", step 6).
const (
	armorBegin = "-----BEGIN MEGOLM SESSION DATA-----"
	armorEnd   = "-----END MEGOLM SESSION DATA-----"
)

// lineLength is the length of the base64 lines Encrypt writes, as Element
// writes them. Readers accept any.
const lineLength = 96

// armor wraps payload as a key-export file. The base64 is padded: Element
// writes it so, every known reader accepts it (matrix-rust-sdk decodes with
// or without padding, browsers' atob likewise), and so do generic base64
// tools.
func armor(payload []byte) []byte {
	encoded := base64.StdEncoding.AppendEncode(nil, payload)
	out := make([]byte, 0, armoredSize(len(payload)))
	out = append(out, armorBegin...)
	out = append(out, '\n')
	for len(encoded) > 0 {
		n := min(lineLength, len(encoded))
		out = append(out, encoded[:n]...)
		out = append(out, '\n')
		encoded = encoded[n:]
	}
	out = append(out, armorEnd...)
	return append(out, '\n')
}

// armoredSize is the length of armor's result for a payload of n bytes.
func armoredSize(n int) int {
	encoded := base64.StdEncoding.EncodedLen(n)
	lines := (encoded + lineLength - 1) / lineLength
	return len(armorBegin) + 1 + encoded + lines + len(armorEnd) + 1
}

// dearmor returns the payload of a key-export file: the base64 between the
// BEGIN and END lines, padded or not, with any ASCII whitespace in it ignored.
func dearmor(file []byte) ([]byte, error) {
	const space = " \t\r\n"
	body, ok := bytes.CutPrefix(bytes.Trim(file, space), []byte(armorBegin))
	if !ok {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrInvalidFile, armorBegin)
	}
	body, ok = bytes.CutSuffix(body, []byte(armorEnd))
	if !ok {
		return nil, fmt.Errorf("%w: it does not end with %q", ErrInvalidFile, armorEnd)
	}
	compact := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			compact = append(compact, c)
		}
	}
	payload, err := b64.DecodeBytes(compact)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid base64", ErrInvalidFile)
	}
	return payload, nil
}
