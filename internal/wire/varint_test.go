package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
)

// rejectDecode checks that a decoder refused its input the way every decoder
// in this package must: a *DecodeError that matches ErrDecode, and no value.
func rejectDecode[T any](t *testing.T, name string, m *T, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted, want a decode error", name)
		return
	}
	var de *DecodeError
	if !errors.As(err, &de) || !errors.Is(err, ErrDecode) {
		t.Errorf("%s: error %v (%T) is not a *DecodeError matching ErrDecode", name, err, err)
	} else if de.Message == "" || de.Reason == "" {
		t.Errorf("%s: error %#v lacks its message or reason", name, de)
	}
	if m != nil {
		t.Errorf("%s: partial value returned with the error: %+v", name, m)
	}
}

// rejectDecodeFor is rejectDecode that also checks the reason names the
// intended check, so a case cannot pass by failing somewhere else.
func rejectDecodeFor[T any](t *testing.T, name, why string, m *T, err error) {
	t.Helper()
	rejectDecode(t, name, m, err)
	var de *DecodeError
	if errors.As(err, &de) && !strings.Contains(de.Reason, why) {
		t.Errorf("%s: reason %q, want one about %q", name, de.Reason, why)
	}
}

// unhex decodes a hex literal of a test.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// cat concatenates byte slices into a fresh one.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestVarintEncoding(t *testing.T) {
	cases := []struct {
		v   uint64
		hex string
	}{
		{0, "00"},
		{1, "01"},
		{127, "7f"},
		{128, "8001"},
		{200, "c801"}, // libolm 3.2.14 tests/test_message.cpp: index 200 is C8 01
		{300, "ac02"},
		{16383, "ff7f"},
		{16384, "808001"},
		{math.MaxUint32, "ffffffff0f"},
		{1 << 63, "80808080808080808001"},
		{math.MaxUint64, "ffffffffffffffffff01"},
	}
	for _, c := range cases {
		want := unhex(t, c.hex)
		got := appendVarint([]byte{0xee}, c.v)
		if !bytes.Equal(got[1:], want) || got[0] != 0xee {
			t.Errorf("appendVarint(%d) = %x, want %x", c.v, got[1:], want)
		}
		if n := varintLen(c.v); n != len(want) {
			t.Errorf("varintLen(%d) = %d, want %d", c.v, n, len(want))
		}
		v, n, err := readVarint(append(bytes.Clone(want), 0x55))
		if err != nil || v != c.v || n != len(want) {
			t.Errorf("readVarint(%x) = %d, %d, %v; want %d, %d", want, v, n, err, c.v, len(want))
		}
		// The standard library's reader agrees on every canonical input.
		if sv, sn := binary.Uvarint(want); sv != c.v || sn != len(want) {
			t.Errorf("binary.Uvarint(%x) = %d, %d", want, sv, sn)
		}
	}
}

func TestVarintLenAtBoundaries(t *testing.T) {
	for k := 1; k < 10; k++ {
		edge := uint64(1) << (7 * k)
		if varintLen(edge-1) != k || varintLen(edge) != k+1 {
			t.Errorf("varintLen around 2^%d: %d, %d; want %d, %d", 7*k, varintLen(edge-1), varintLen(edge), k, k+1)
		}
	}
}

func TestReadVarintRejects(t *testing.T) {
	cases := []struct {
		name, hex string
		truncated bool
	}{
		{"empty", "", true},
		{"lone continuation", "80", true},
		{"nine continuations", "ffffffffffffffffff", true},
		{"non-canonical zero", "8000", false},
		{"non-canonical one", "8100", false},
		{"non-canonical 127", "ff00", false},
		{"non-canonical, three bytes", "ff8000", false},
		{"non-canonical, ten bytes", "80808080808080808000", false},
		{"65 bits", "ffffffffffffffffff02", false},
		{"tenth byte 0x7f", "ffffffffffffffffff7f", false},
		{"eleven bytes", "ffffffffffffffffff8101", false},
		{"eleven bytes, canonical-looking", "8080808080808080808001", false},
	}
	for _, c := range cases {
		v, n, err := readVarint(unhex(t, c.hex))
		if err == nil || n != 0 || v != 0 {
			t.Errorf("%s: readVarint(%s) = %d, %d, %v; want an error", c.name, c.hex, v, n, err)
			continue
		}
		if got := errors.Is(err, ErrTruncated); got != c.truncated {
			t.Errorf("%s: errors.Is(%v, ErrTruncated) = %t, want %t", c.name, err, got, c.truncated)
		}
	}
}

// TestForEachFieldRejects covers the walker that all three decoders share.
func TestForEachFieldRejects(t *testing.T) {
	cases := map[string]string{
		"tag truncated":           "80",
		"varint value missing":    "08",
		"varint value truncated":  "08ff",
		"length missing":          "12",
		"length past the end":     "1203aabb",
		"length over 64 bits":     "12ffffffffffffffffff7f",
		"huge length":             "12ffffffffffffffff7f",
		"non-canonical tag":       "880000",
		"non-canonical length":    "128000",
		"wire type 1 (64-bit)":    "090000000000000000",
		"wire type 3 (group)":     "0b",
		"wire type 4 (end group)": "0c",
		"wire type 5 (32-bit)":    "0d00000000",
		"wire type 6":             "0e00",
		"wire type 7":             "0f00",
	}
	for name, h := range cases {
		calls := 0
		err := forEachField(unhex(t, h), func(field) error { calls++; return nil })
		if err == nil {
			t.Errorf("%s: %s accepted", name, h)
		}
		if calls != 0 {
			t.Errorf("%s: callback ran %d times before the error", name, calls)
		}
	}
}

func TestForEachFieldBytesAreCapped(t *testing.T) {
	body := unhex(t, "1202aabb0801")
	err := forEachField(body, func(f field) error {
		if f.num == 2 {
			if cap(f.bytes) != 2 {
				t.Errorf("cap(bytes) = %d, want 2: appending would overwrite the next field", cap(f.bytes))
			}
			_ = append(f.bytes, 0xff)
		}
		return nil
	})
	if err != nil || !bytes.Equal(body, unhex(t, "1202aabb0801")) {
		t.Fatalf("err = %v, body = %x", err, body)
	}
}

// FuzzVarint checks that readVarint accepts exactly the canonical encodings:
// whatever it reads re-encodes to the bytes it consumed, and encoding any
// value reads back as that value.
func FuzzVarint(f *testing.F) {
	for _, h := range []string{"00", "7f", "8001", "c801", "ffffffff0f", "ffffffffffffffffff01", "8000", "ffffffffffffffffff02", "80", ""} {
		f.Add(unhex(f, h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, n, err := readVarint(b)
		if err != nil {
			if v != 0 || n != 0 {
				t.Fatalf("error %v with value %d, length %d", err, v, n)
			}
		} else {
			if n < 1 || n > 10 || n > len(b) {
				t.Fatalf("length %d out of range for %d input bytes", n, len(b))
			}
			if enc := appendVarint(nil, v); !bytes.Equal(enc, b[:n]) {
				t.Fatalf("read %d from %x, which encodes as %x", v, b[:n], enc)
			}
			if sv, sn := binary.Uvarint(b); sv != v || sn != n {
				t.Fatalf("binary.Uvarint(%x) = %d, %d; readVarint = %d, %d", b, sv, sn, v, n)
			}
		}
		var x uint64
		if len(b) >= 8 {
			x = binary.LittleEndian.Uint64(b)
		}
		enc := appendVarint(nil, x)
		if got, m, err := readVarint(enc); err != nil || got != x || m != len(enc) || m != varintLen(x) {
			t.Fatalf("%d encodes as %x, reads back as %d, %d, %v", x, enc, got, m, err)
		}
	})
}
