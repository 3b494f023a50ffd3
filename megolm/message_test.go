package megolm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/wire"
)

// TestLibolmGroupMessageVector checks the message codec used here against
// libolm 3.2.14 tests/test_message.cpp ("Group message encode/decode test"):
// index 200 with a 10-byte ciphertext encodes as
// 03 08 C8 01 12 0A "ciphertext", followed by the 8-byte MAC "hmacsha2". libolm
// decodes the body without the signature; here the 64 signature bytes follow.
func TestLibolmGroupMessageVector(t *testing.T) {
	header := []byte{0x03, 0x08, 0xC8, 0x01, 0x12, 0x0A}
	enc := wire.EncodeMegolmMessage(200, []byte("ciphertext"))
	if len(enc) != 1+(1+2)+(2+10)+8+64 || !bytes.Equal(enc[:6], header) || string(enc[6:16]) != "ciphertext" {
		t.Fatalf("encoded % x", enc)
	}

	msg := append(append(append(bytes.Clone(header), "ciphertext"...), "hmacsha2"...), bytes.Repeat([]byte{0x5a}, 64)...)
	m, err := parseMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Index != 200 || string(m.Ciphertext) != "ciphertext" || string(m.MAC[:]) != "hmacsha2" {
		t.Fatalf("decoded index %d, ciphertext %q, mac %q", m.Index, m.Ciphertext, m.MAC[:])
	}
}

// TestMessageLengthBoundaries: a version-3 message has a 72-byte suffix (MAC
// and signature), and vodozemac requires at least two more bytes. The
// shortest message xolm or libolm can produce carries index 0 and a
// 16-byte ciphertext: 1 + 2 + 2 + 16 + 72 = 93 bytes. Shorter inputs built
// the same way, down to the empty body, are decode errors.
func TestMessageLengthBoundaries(t *testing.T) {
	out, in := newTestPair(t, 0)
	msg := mustEncrypt(t, out, "")
	if len(msg) != 93 {
		t.Fatalf("shortest message is %d bytes", len(msg))
	}
	mustDecrypt(t, in, msg, "", 0)
	suffix := bytes.Repeat([]byte{1}, 72)
	for _, body := range [][]byte{nil, {0x08}, {0x08, 0x00}, {0x12, 0x00}} {
		m := append(append([]byte{3}, body...), suffix...) // 73, 74, 75 and 75 bytes
		if _, err := parseMessage(m); !errors.Is(err, ErrInvalidMessage) || !errors.Is(err, wire.ErrDecode) {
			t.Errorf("%d-byte message % x: %v", len(m), body, err)
		}
	}
	for _, n := range []int{0, 1, 72} {
		if _, err := parseMessage(bytes.Repeat([]byte{3}, n)); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	// Version 4 (vodozemac's experimental full-MAC format) is not accepted.
	v4 := bytes.Clone(msg)
	v4[0] = 4
	if _, err := parseMessage(v4); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("version 4: %v", err)
	}
}
