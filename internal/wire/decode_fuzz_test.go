package wire

import (
	"bytes"
	"slices"
	"testing"
)

// Fuzz targets for the three message decoders. Each is seeded with the
// published vectors of testdata/vectors.txt, with messages from the
// encoders, and with near-misses of those: single-bit flips in every
// region, truncations, a wrong version byte and the other kinds' messages.
// Inputs worth keeping live in testdata/fuzz/FuzzX and run with go test.
//
// Properties: no panic; an error is a *DecodeError with no value; a
// decoded message re-encodes canonically, and that encoding decodes to the
// same parts and re-encodes to itself.

// nearMisses returns b and variants of it that a decoder should mostly refuse.
func nearMisses(b []byte) [][]byte {
	out := [][]byte{b}
	if len(b) == 0 {
		return out
	}
	// One bit flipped at the start, the middle, before the MAC and at the end.
	for _, at := range []int{0, 1, 2, len(b) / 2, len(b) - MACLength - 1, len(b) - MACLength, len(b) - 1} {
		if at < 0 || at >= len(b) {
			continue
		}
		for _, bit := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[at] ^= bit
			out = append(out, c)
		}
	}
	out = append(out, b[:len(b)-1], b[:len(b)/2], b[1:], append(bytes.Clone(b), 0))
	for _, v := range []byte{0, 2, 4} {
		c := bytes.Clone(b)
		c[0] = v
		out = append(out, c)
	}
	return out
}

// seedMessages returns every kind of message this package knows, so each
// decoder is also fed the others' messages.
func seedMessages(f *testing.F) [][]byte {
	var msgs [][]byte
	for _, v := range loadVectors(f) {
		msgs = append(msgs, v.input(f))
	}
	olm := sealOlm(testKey(1), 128, testCiphertext(32), "MACBYTES")
	msgs = append(msgs,
		olm,
		sealOlm(testKey(2), 0, nil, "MACBYTES"),
		EncodePreKeyMessage(testKey(3), testKey(4), testKey(5), olm),
		sealMegolm(0, nil, "MACBYTES", testSignature(1)),
		sealMegolm(16384, testCiphertext(48), "MACBYTES", testSignature(2)),
		olmBody(olmCTField([]byte("ct")), appendVarintField(nil, 9, 1), olmIndexField(3), olmKeyField(testKey(6))),
	)
	var out [][]byte
	for _, m := range msgs {
		out = append(out, nearMisses(m)...)
	}
	return out
}

// sameBytes reports whether a and b hold the same bytes in any order, as an
// encoding of the same fields in another order would.
func sameBytes(a, b []byte) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return bytes.Equal(a, b)
}

// checkCanonical checks a re-encoding y of a decoded input x: it is never
// longer (unknown fields are dropped, known ones are kept byte for byte), and
// of the same length only when x holds the same fields, perhaps reordered.
func checkCanonical(t *testing.T, x, y []byte) {
	t.Helper()
	if len(y) > len(x) || (len(y) == len(x) && !sameBytes(x, y)) {
		t.Fatalf("input %x re-encodes as %x", x, y)
	}
}

func FuzzDecodeOlmMessage(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		m, err := DecodeOlmMessage(x)
		if err != nil {
			rejectDecode(t, "fuzz input", m, err)
			return
		}
		if !bytes.Equal(m.Authenticated(), x[:len(x)-MACLength]) || !bytes.Equal(m.MAC[:], x[len(x)-MACLength:]) {
			t.Fatalf("MAC split wrong for %x", x)
		}
		y := sealOlm(&m.RatchetKey, m.ChainIndex, m.Ciphertext, string(m.MAC[:]))
		checkCanonical(t, x, y)
		m2, err := DecodeOlmMessage(y)
		if err != nil {
			t.Fatalf("re-encoding %x does not decode: %v", y, err)
		}
		if m2.RatchetKey != m.RatchetKey || m2.ChainIndex != m.ChainIndex || !bytes.Equal(m2.Ciphertext, m.Ciphertext) || m2.MAC != m.MAC {
			t.Fatalf("parts changed: %+v, then %+v", m, m2)
		}
		if z := sealOlm(&m2.RatchetKey, m2.ChainIndex, m2.Ciphertext, string(m2.MAC[:])); !bytes.Equal(z, y) {
			t.Fatalf("canonical message %x re-encodes as %x", y, z)
		}
	})
}

func FuzzDecodePreKeyMessage(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		m, err := DecodePreKeyMessage(x)
		if err != nil {
			rejectDecode(t, "fuzz input", m, err)
			return
		}
		y := EncodePreKeyMessage(&m.OneTimeKey, &m.BaseKey, &m.IdentityKey, m.Message)
		checkCanonical(t, x, y)
		m2, err := DecodePreKeyMessage(y)
		if err != nil {
			t.Fatalf("re-encoding %x does not decode: %v", y, err)
		}
		if m2.OneTimeKey != m.OneTimeKey || m2.BaseKey != m.BaseKey || m2.IdentityKey != m.IdentityKey || !bytes.Equal(m2.Message, m.Message) {
			t.Fatalf("parts changed: %+v, then %+v", m, m2)
		}
		if z := EncodePreKeyMessage(&m2.OneTimeKey, &m2.BaseKey, &m2.IdentityKey, m2.Message); !bytes.Equal(z, y) {
			t.Fatalf("canonical message %x re-encodes as %x", y, z)
		}
	})
}

func FuzzDecodeMegolmMessage(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		m, err := DecodeMegolmMessage(x)
		if err != nil {
			rejectDecode(t, "fuzz input", m, err)
			return
		}
		n := len(x)
		if !bytes.Equal(m.SignatureCovered(), x[:n-SignatureLength]) || !bytes.Equal(m.MACCovered(), x[:n-SignatureLength-MACLength]) ||
			!bytes.Equal(m.MAC[:], x[n-SignatureLength-MACLength:n-SignatureLength]) || !bytes.Equal(m.Signature[:], x[n-SignatureLength:]) {
			t.Fatalf("MAC or signature split wrong for %x", x)
		}
		y := sealMegolm(m.Index, m.Ciphertext, string(m.MAC[:]), m.Signature)
		checkCanonical(t, x, y)
		m2, err := DecodeMegolmMessage(y)
		if err != nil {
			t.Fatalf("re-encoding %x does not decode: %v", y, err)
		}
		if m2.Index != m.Index || !bytes.Equal(m2.Ciphertext, m.Ciphertext) || m2.MAC != m.MAC || m2.Signature != m.Signature {
			t.Fatalf("parts changed: %+v, then %+v", m, m2)
		}
		if z := sealMegolm(m2.Index, m2.Ciphertext, string(m2.MAC[:]), m2.Signature); !bytes.Equal(z, y) {
			t.Fatalf("canonical message %x re-encodes as %x", y, z)
		}
	})
}
