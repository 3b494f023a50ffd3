package megolm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/cipher"
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

// TestOutboundMessageAtIndex200 checks the header of a message at index 200
// against the group message encoding of libolm 3.2.14 tests/test_message.cpp
// ("\x03" "\x08\xC8\x01" "\x12" length); the ciphertext there is 10 bytes, here
// a 10-byte plaintext pads to 16.
func TestOutboundMessageAtIndex200(t *testing.T) {
	s, err := NewOutboundGroupSession(testRand(3))
	if err != nil {
		t.Fatal(err)
	}
	s.ratchet.advanceTo(200)
	msg := mustEncrypt(t, s, "ciphertext")
	if want := []byte{0x03, 0x08, 0xC8, 0x01, 0x12, 0x10}; !bytes.Equal(msg[:6], want) {
		t.Fatalf("header % x, want % x", msg[:6], want)
	}
}

// TestDecryptBitFlips flips every bit of a message in turn: each must fail,
// and leave the session byte-identical.
func TestDecryptBitFlips(t *testing.T) {
	out, in := newTestPair(t, 300) // a two-byte index varint
	msg := mustEncrypt(t, out, "a message long enough to span two AES blocks")
	mustDecrypt(t, in, msg, "a message long enough to span two AES blocks", 300)
	before := in.marshal()
	for bit := range len(msg) * 8 {
		m := bytes.Clone(msg)
		m[bit/8] ^= 1 << (bit % 8)
		if _, _, err := in.Decrypt(m); err == nil {
			t.Fatalf("bit %d flipped: decrypted", bit)
		}
		if !bytes.Equal(before, in.marshal()) {
			t.Fatalf("bit %d flipped: the session changed", bit)
		}
	}
	for n := range len(msg) {
		if _, _, err := in.Decrypt(msg[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: decrypted", n)
		}
		if !bytes.Equal(before, in.marshal()) {
			t.Fatalf("truncated to %d bytes: the session changed", n)
		}
	}
}

// resign replaces the MAC and signature of a message built by hand, as the
// owner of the signing key could.
func resign(t *testing.T, out *OutboundGroupSession, r *ratchet, index uint32, ciphertext []byte, goodMAC bool) []byte {
	t.Helper()
	msg := wire.EncodeMegolmMessage(index, ciphertext)
	n := len(msg)
	k := r.keys()
	mac := k.MAC(wire.MegolmMACCovered(msg))
	if !goodMAC {
		mac[0] ^= 1
	}
	copy(msg[n-wire.SignatureLength-cipher.MACLength:], mac[:cipher.MACLength])
	copy(msg[n-wire.SignatureLength:], out.signingKey.Sign(wire.MegolmSignatureCovered(msg)))
	return msg
}

// TestDecryptSignedFailures covers failures behind a valid signature: a bad
// MAC, and bad padding under a good MAC. Neither changes the session.
func TestDecryptSignedFailures(t *testing.T) {
	out, in := newTestPair(t, 0)
	r := out.ratchet
	r.advanceTo(4)
	before := in.marshal()

	k := r.keys()
	good := k.Encrypt(nil, []byte("hello"))
	if _, _, err := in.Decrypt(resign(t, out, &r, 4, good, false)); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("bad MAC: %v", err)
	}

	// A last block that decrypts to a padding byte of 0x11.
	block := bytes.Repeat([]byte{0x11}, 16)
	badPad := k.Encrypt(nil, block)[:16] // CBC: the first block of a longer ciphertext
	_, _, err := in.Decrypt(resign(t, out, &r, 4, badPad, true))
	if err == nil || errors.Is(err, ErrBadMAC) || !errors.Is(err, cipher.ErrBadPadding) {
		t.Fatalf("bad padding: %v", err)
	}
	if !bytes.Equal(before, in.marshal()) {
		t.Fatal("a signed failure changed the session")
	}
	// The same construction with a good ciphertext decrypts.
	mustDecrypt(t, in, resign(t, out, &r, 4, good, true), "hello", 4)
}
