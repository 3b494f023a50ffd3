package canonicaljson

import (
	"strconv"
	"strings"
)

// maxSafeInteger is 2^53-1, the largest integer the spec allows: every integer
// up to it is exact in an IEEE double, which many JSON libraries decode to.
const maxSafeInteger = 1<<53 - 1

// maxSafeDigits is the number of decimal digits of maxSafeInteger.
const maxSafeDigits = 16

// canonicalNumber returns the canonical form of the number literal lit, which
// the decoder has already checked against the JSON grammar
// (-?int(.frac)?([eE][+-]?digits)?). The literal is read as the exact decimal
// it denotes, never through a float: it is accepted when that decimal is an
// integer in [-(2^53-1), 2^53-1].
func canonicalNumber(lit string) (number, error) {
	s, neg := strings.CutPrefix(lit, "-")
	mantissa, exp, _ := strings.Cut(strings.ToLower(s), "e")
	whole, frac, _ := strings.Cut(mantissa, ".")

	// The value is digits × 10^scale.
	digits := strings.TrimLeft(whole+frac, "0")
	scale := -len(frac)
	trimmed := strings.TrimRight(digits, "0")
	scale += len(digits) - len(trimmed)
	digits = trimmed
	if digits == "" {
		return "0", nil // zero in any notation, -0 included, has one form
	}

	if exp != "" {
		e, ok := smallExponent(exp)
		if !ok {
			// |exponent| ≥ 10^6: either far too large, or (digits has no
			// trailing zeros) not an integer.
			return "", &NumberError{Literal: lit}
		}
		scale += e
	}
	// digits does not end in 0, so a negative scale leaves a fraction.
	if scale < 0 || len(digits)+scale > maxSafeDigits {
		return "", &NumberError{Literal: lit}
	}
	n, err := strconv.ParseUint(digits+strings.Repeat("0", scale), 10, 64)
	if err != nil || n > maxSafeInteger {
		return "", &NumberError{Literal: lit}
	}
	out := strconv.FormatUint(n, 10)
	if neg {
		out = "-" + out
	}
	return number(out), nil
}

// smallExponent parses an exponent ([+-]?digits) whose magnitude is below 10^6.
func smallExponent(s string) (int, bool) {
	s, neg := strings.CutPrefix(s, "-")
	s = strings.TrimPrefix(s, "+")
	s = strings.TrimLeft(s, "0")
	if len(s) > 6 {
		return 0, false
	}
	e := 0
	for _, c := range []byte(s) {
		e = e*10 + int(c-'0')
	}
	if neg {
		e = -e
	}
	return e, true
}

// appendValue appends the canonical encoding of the parsed value v.
func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, v)
	case number:
		return append(dst, v...)
	case string:
		return appendString(dst, v)
	case []any:
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	case object:
		dst = append(dst, '{')
		for i, m := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, m.key)
			dst = append(dst, ':')
			dst = appendValue(dst, m.val)
		}
		return append(dst, '}')
	}
	panic("canonicaljson: internal error: unexpected value type")
}

// appendString appends s, valid UTF-8, as a JSON string with the spec's
// escapes and no others. Only ASCII bytes are ever escaped, so s can be
// walked byte by byte: the bytes of a multi-byte character are all ≥ 0x80.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
