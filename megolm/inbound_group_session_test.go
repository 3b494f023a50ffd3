package megolm

import (
	"bytes"
	"crypto/aes"
	stdcipher "crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/xolm/xolm/internal/wire"
)

func mustDecrypt(t testing.TB, s *InboundGroupSession, msg []byte, wantText string, wantIndex uint32) {
	t.Helper()
	pt, idx, err := s.Decrypt(msg)
	if err != nil {
		t.Fatalf("decrypt index %d: %v", wantIndex, err)
	}
	if string(pt) != wantText || idx != wantIndex {
		t.Fatalf("decrypted %q at %d, want %q at %d", pt, idx, wantText, wantIndex)
	}
}

func TestInboundDecryptInOrderAndOutOfOrder(t *testing.T) {
	out, in := newTestPair(t, 0)
	var msgs [][]byte
	for i := range 10 {
		msgs = append(msgs, mustEncrypt(t, out, fmt.Sprint("message ", i)))
	}
	for _, i := range []int{0, 1, 2, 5, 4, 3, 9, 6, 8, 7, 0, 9} {
		mustDecrypt(t, in, msgs[i], fmt.Sprint("message ", i), uint32(i))
	}
	if in.FirstKnownIndex() != 0 || in.latest.counter != 9 {
		t.Fatalf("first known %d, latest %d", in.FirstKnownIndex(), in.latest.counter)
	}
}

// TestInboundLatestRatchet checks that decrypting in order far into a session
// starts from the latest ratchet: after index 100,000, index 100,001 is one
// step away, not 100,001 from the initial ratchet.
func TestInboundLatestRatchet(t *testing.T) {
	out, in := newTestPair(t, 0)
	out.ratchet.advanceTo(100_000)
	mustDecrypt(t, in, mustEncrypt(t, out, "far"), "far", 100_000)
	if in.latest.counter != 100_000 || in.initial.counter != 0 {
		t.Fatalf("latest %d, initial %d", in.latest.counter, in.initial.counter)
	}
	next := in.latest
	if n := next.advanceTo(100_001); n != 1 {
		t.Fatalf("the next index costs %d HMACs from the latest ratchet", n)
	}
	mustDecrypt(t, in, mustEncrypt(t, out, "next"), "next", 100_001)
	if in.latest.counter != 100_001 {
		t.Fatalf("latest %d", in.latest.counter)
	}
	// An older message is decrypted from the initial ratchet and leaves the
	// latest one alone.
	old := &OutboundGroupSession{ratchet: in.initial, signingKey: out.signingKey}
	old.ratchet.advanceTo(5)
	mustDecrypt(t, in, mustEncrypt(t, old, "old"), "old", 5)
	if in.latest.counter != 100_001 {
		t.Fatalf("an older message moved the latest ratchet to %d", in.latest.counter)
	}
}

func TestInboundFromExport(t *testing.T) {
	out, in := newTestPair(t, 0)
	var msgs [][]byte
	for i := range 6 {
		msgs = append(msgs, mustEncrypt(t, out, fmt.Sprint(i)))
	}
	mustDecrypt(t, in, msgs[5], "5", 5) // the export must not depend on the latest ratchet
	exp, err := in.Export(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 165 || exp[0] != 1 {
		t.Fatalf("export is %d bytes, version %d", len(exp), exp[0])
	}
	imp, err := ImportInboundGroupSession(exp)
	if err != nil {
		t.Fatal(err)
	}
	if imp.FirstKnownIndex() != 3 || imp.SigningKeyVerified() || imp.ID() != out.ID() {
		t.Fatalf("imported %v", imp)
	}
	for i := range 3 {
		before := imp.marshal()
		_, _, err := imp.Decrypt(msgs[i])
		var uerr *UnknownMessageIndexError
		if !errors.As(err, &uerr) || uerr.FirstKnown != 3 || uerr.Index != uint32(i) || !errors.Is(err, ErrUnknownMessageIndex) {
			t.Fatalf("index %d below the export: %v", i, err)
		}
		if !bytes.Equal(before, imp.marshal()) {
			t.Fatal("a refused index changed the session")
		}
	}
	for i := 3; i < 6; i++ {
		mustDecrypt(t, imp, msgs[i], fmt.Sprint(i), uint32(i))
	}
	if !imp.SigningKeyVerified() {
		t.Fatal("a decrypted message did not verify the imported session")
	}
	if _, err := imp.Export(2); !errors.Is(err, ErrUnknownMessageIndex) {
		t.Fatalf("export below the first known index: %v", err)
	}
	if !bytes.Equal(imp.ExportAtFirstKnownIndex(), exp) {
		t.Fatal("ExportAtFirstKnownIndex differs from the export it came from")
	}
	if first, _ := in.Export(0); !bytes.Equal(in.ExportAtFirstKnownIndex(), first) {
		t.Fatal("ExportAtFirstKnownIndex differs from Export(FirstKnownIndex)")
	}
}

func TestDecryptOtherSession(t *testing.T) {
	out, _ := newTestPair(t, 0)
	other, err := NewOutboundGroupSession(testRand(9))
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInboundGroupSession(other.SessionKey())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := in.Decrypt(mustEncrypt(t, out, "x")); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("message of another session: %v", err)
	}
	if _, _, err := in.Decrypt([]byte{3, 8}); !errors.Is(err, ErrInvalidMessage) || !errors.Is(err, wire.ErrDecode) {
		t.Fatalf("malformed message: %v", err)
	}
}

func TestDecryptReplayIsTheCallersJob(t *testing.T) {
	out, in := newTestPair(t, 0)
	msg := mustEncrypt(t, out, "again")
	mustDecrypt(t, in, msg, "again", 0)
	mustDecrypt(t, in, msg, "again", 0)
}

func TestInboundClone(t *testing.T) {
	out, in := newTestPair(t, 0)
	mustEncrypt(t, out, "skip")
	c := in.Clone()
	mustDecrypt(t, c, mustEncrypt(t, out, "x"), "x", 1)
	if in.latest.counter != 0 || c.latest.counter != 1 {
		t.Fatal("decrypting on a clone changed the original")
	}
}

// FuzzDecrypt feeds arbitrary messages to a session: nothing may panic, a
// failure must leave the session unchanged, and nothing but the sender's
// messages may decrypt.
func FuzzDecrypt(f *testing.F) {
	out, in := newTestPair(f, 0)
	var msgs [][]byte
	for i := range 3 {
		msgs = append(msgs, mustEncrypt(f, out, fmt.Sprint("seed ", i)))
	}
	for _, m := range msgs {
		f.Add(m)
		f.Add(m[:len(m)-1])
		flipped := bytes.Clone(m)
		flipped[5] ^= 0x80
		f.Add(flipped)
	}
	f.Add([]byte{3, 8, 0, 0x12, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := in.Clone()
		before := s.marshal()
		pt, _, err := s.Decrypt(msg)
		if err != nil {
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
			if !bytes.Equal(before, s.marshal()) {
				t.Fatal("a failed decrypt changed the session")
			}
			return
		}
		for _, m := range msgs {
			if bytes.Equal(m, msg) {
				return
			}
		}
		t.Fatalf("a message the sender never made decrypted: %x", msg)
	})
}

// BenchmarkDecrypt decrypts 1 KiB messages in order, so each costs one
// ratchet step from the latest ratchet. The messages start at index 100,000,
// far from the first known index.
func BenchmarkDecrypt(b *testing.B) {
	out, in := newTestPair(b, 100_000)
	msgs := make([][]byte, 512)
	for i := range msgs {
		msgs[i], _ = out.Encrypt(benchPlaintext)
	}
	s := in.Clone()
	i := 0
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPlaintext)))
	for b.Loop() {
		if i == len(msgs) {
			s, i = in.Clone(), 0
		}
		if _, _, err := s.Decrypt(msgs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkDecryptFloor does only the primitives of one in-order Decrypt,
// straight from the standard library: the Ed25519 verification, one
// ratchet-step HMAC, HKDF of the ratchet, the HMAC of the message and
// AES-256-CBC decryption of 1 KiB.
func BenchmarkDecryptFloor(b *testing.B) {
	out, _ := newTestPair(b, 100_000)
	msg, _ := out.Encrypt(benchPlaintext)
	pub := out.SigningKey().Bytes()
	r := out.ratchet.data
	ctStart, ctEnd := 6, len(msg)-72 // index 100,000 takes a 3-byte varint; the length 2 bytes
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPlaintext)))
	for b.Loop() {
		if !ed25519.Verify(pub, msg[:len(msg)-64], msg[len(msg)-64:]) {
			b.Fatal("signature")
		}
		step := hmac.New(sha256.New, r[96:])
		step.Write([]byte{3})
		step.Sum(r[96:96])
		k, _ := hkdf.Key(sha256.New, r[:], nil, "MEGOLM_KEYS", 80)
		m := hmac.New(sha256.New, k[32:64])
		m.Write(msg[:ctEnd])
		_ = hmac.Equal(m.Sum(nil)[:8], msg[ctEnd:ctEnd+8])
		block, _ := aes.NewCipher(k[:32])
		pt := make([]byte, ctEnd-ctStart-2)
		stdcipher.NewCBCDecrypter(block, k[64:80]).CryptBlocks(pt, msg[ctStart+2:ctEnd])
	}
}
