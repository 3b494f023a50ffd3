package wire

import (
	"bytes"
	"fmt"
	"testing"
)

func preKeyBody(fields ...[]byte) []byte {
	return cat(append([][]byte{{Version}}, fields...)...)
}

func preKeyKeyField(num uint64, k *[KeyLength]byte) []byte { return appendBytesField(nil, num, k[:]) }

func TestPreKeyMessageRoundTrip(t *testing.T) {
	otk, base, id := testKey(0x10), testKey(0x20), testKey(0x30)
	for _, index := range testIndices {
		for n := 0; n <= 300; n++ {
			inner := sealOlm(testKey(0x40), index, testCiphertext(n), "INNERMAC")
			b := EncodePreKeyMessage(otk, base, id, inner)
			m, err := DecodePreKeyMessage(b)
			if err != nil {
				t.Fatalf("index %d, %d bytes: %v", index, n, err)
			}
			if m.OneTimeKey != *otk || m.BaseKey != *base || m.IdentityKey != *id || !bytes.Equal(m.Message, inner) {
				t.Fatalf("index %d, %d bytes: decoded %+v", index, n, m)
			}
			if again := EncodePreKeyMessage(&m.OneTimeKey, &m.BaseKey, &m.IdentityKey, m.Message); !bytes.Equal(again, b) {
				t.Fatalf("index %d, %d bytes: re-encoding differs", index, n)
			}
			// The inner message is a complete normal message, MAC included.
			in, err := DecodeOlmMessage(m.Message)
			if err != nil || in.ChainIndex != index || len(in.Ciphertext) != n {
				t.Fatalf("index %d, %d bytes: inner message: %v", index, n, err)
			}
		}
	}
}

// TestPreKeyMessageLayout pins the field order 0x0A one-time key, 0x12 base
// key, 0x1A identity key, 0x22 inner message (PROTOCOL §2.6).
func TestPreKeyMessageLayout(t *testing.T) {
	otk, base, id := testKey(1), testKey(2), testKey(3)
	inner := []byte("inner")
	want := cat([]byte{0x03, 0x0a, 0x20}, otk[:], []byte{0x12, 0x20}, base[:], []byte{0x1a, 0x20}, id[:], []byte{0x22, 0x05}, inner)
	if got := EncodePreKeyMessage(otk, base, id, inner); !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	// A 200-byte inner message needs a two-byte length.
	long := EncodePreKeyMessage(otk, base, id, make([]byte, 200))
	if !bytes.Equal(long[1+3*34:1+3*34+3], []byte{0x22, 0xc8, 0x01}) {
		t.Fatalf("inner length encoded as %x", long[1+3*34:1+3*34+3])
	}
}

func TestPreKeyMessageAnyOrderAndUnknownFields(t *testing.T) {
	otk, base, id := testKey(0x11), testKey(0x22), testKey(0x33)
	fields := [][]byte{
		preKeyKeyField(preKeyOneTimeKey, otk),
		preKeyKeyField(preKeyBaseKey, base),
		preKeyKeyField(preKeyIdentityKey, id),
		appendBytesField(nil, preKeyMessage, []byte("inner")),
	}
	unknown := [][]byte{appendVarintField(nil, 5, 1), appendBytesField(nil, 6, []byte("x")), appendVarintField(nil, 0, 3), appendBytesField(nil, 100, nil)}
	// Rotations and the reversal cover every field in first and last place.
	var orders [][][]byte
	for r := range fields {
		rot := append(append([][]byte{}, fields[r:]...), fields[:r]...)
		rev := make([][]byte, len(rot))
		for j := range rot {
			rev[j] = rot[len(rot)-1-j]
		}
		orders = append(orders, rot, rev)
	}
	for oi, order := range orders {
		for ui, u := range unknown {
			for pos := 0; pos <= len(order); pos++ {
				b := preKeyBody(append(append(append([][]byte{}, order[:pos]...), u), order[pos:]...)...)
				m, err := DecodePreKeyMessage(b)
				if err != nil {
					t.Fatalf("order %d, unknown %d at %d: %v", oi, ui, pos, err)
				}
				if m.OneTimeKey != *otk || m.BaseKey != *base || m.IdentityKey != *id || string(m.Message) != "inner" {
					t.Fatalf("order %d, unknown %d at %d: decoded %+v", oi, ui, pos, m)
				}
			}
		}
	}
}

func TestPreKeyMessageRejects(t *testing.T) {
	otk, base, id := testKey(4), testKey(5), testKey(6)
	o, b, i := preKeyKeyField(preKeyOneTimeKey, otk), preKeyKeyField(preKeyBaseKey, base), preKeyKeyField(preKeyIdentityKey, id)
	msg := appendBytesField(nil, preKeyMessage, []byte("inner"))
	short := func(num uint64, n int) []byte { return appendBytesField(nil, num, make([]byte, n)) }
	withVersion := func(v byte) []byte { m := preKeyBody(o, b, i, msg); m[0] = v; return m }
	cases := []struct {
		name string
		b    []byte
		why  string
	}{
		{"empty", nil, "empty"},
		{"version only", []byte{Version}, "missing"},
		// libolm ignores the outer version byte; vodozemac requires 3, and so does this decoder.
		{"version 0", withVersion(0), "version"},
		{"version 4", withVersion(4), "version"},
		{"version 0xff", withVersion(0xff), "version"},
		// libolm lets the caller supply the identity key instead (olm_create_inbound_session_from);
		// this decoder always requires it, as vodozemac does.
		{"missing identity key", preKeyBody(o, b, msg), "missing field 3"},
		{"missing one-time key", preKeyBody(b, i, msg), "missing field 1"},
		{"missing base key", preKeyBody(o, i, msg), "missing field 2"},
		{"missing message", preKeyBody(o, b, i), "missing field 4"},
		{"duplicate one-time key", preKeyBody(o, b, i, msg, o), "duplicate field 1"},
		{"duplicate base key", preKeyBody(o, b, b, i, msg), "duplicate field 2"},
		{"duplicate identity key", preKeyBody(i, o, b, i, msg), "duplicate field 3"},
		{"duplicate message", preKeyBody(o, b, i, msg, msg), "duplicate field 4"},
		{"one-time key as varint", preKeyBody(appendVarintField(nil, 1, 0), b, i, msg), "wire type"},
		{"base key as varint", preKeyBody(o, appendVarintField(nil, 2, 7), i, msg), "wire type"},
		{"identity key as varint", preKeyBody(o, b, appendVarintField(nil, 3, 7), msg), "wire type"},
		{"message as varint", preKeyBody(o, b, i, appendVarintField(nil, 4, 7)), "wire type"},
		{"one-time key of 31 bytes", preKeyBody(short(1, 31), b, i, msg), "is 31 bytes"},
		{"base key of 33 bytes", preKeyBody(o, short(2, 33), i, msg), "is 33 bytes"},
		{"identity key of 0 bytes", preKeyBody(o, b, short(3, 0), msg), "is 0 bytes"},
		{"identity key of 64 bytes", preKeyBody(o, b, short(3, 64), msg), "is 64 bytes"},
		{"non-canonical tag", preKeyBody([]byte{0x8a, 0x00, 0x20}, otk[:], b, i, msg), "non-canonical"},
		{"non-canonical length", preKeyBody(o, b, i, []byte{0x22, 0x85, 0x00}, []byte("inner")), "non-canonical"},
		{"unknown varint over 64 bits", preKeyBody(o, b, i, msg, unhex(t, "28ffffffffffffffffff7f")), "64 bits"},
		{"wire type 1", preKeyBody(o, b, i, msg, unhex(t, "290000000000000000")), "wire type"},
		{"wire type 5", preKeyBody(o, unhex(t, "2d00000000"), b, i, msg), "wire type"},
		{"wire type 6", preKeyBody(o, b, i, msg, []byte{0x0e}), "wire type"},
		{"message length past the end", preKeyBody(o, b, i, []byte{0x22, 0x06}, []byte("inner")), "truncated"},
	}
	for _, c := range cases {
		m, err := DecodePreKeyMessage(c.b)
		rejectDecodeFor(t, c.name, c.why, m, err)
	}
}

func TestPreKeyMessageTruncation(t *testing.T) {
	for _, n := range []int{0, 1, 79, 300} {
		b := EncodePreKeyMessage(testKey(1), testKey(2), testKey(3), testCiphertext(n))
		for l := range len(b) {
			m, err := DecodePreKeyMessage(b[:l:l])
			rejectDecode(t, fmt.Sprintf("%d-byte inner message, cut to %d", n, l), m, err)
		}
	}
}

func BenchmarkDecodePreKeyMessage(b *testing.B) {
	inner := sealOlm(testKey(4), 0, testCiphertext(400), "MACBYTES")
	msg := EncodePreKeyMessage(testKey(1), testKey(2), testKey(3), inner)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePreKeyMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
