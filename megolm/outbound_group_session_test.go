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
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/xolm/xolm/internal/keys"
)

// testRand returns a deterministic random stream.
func testRand(seed byte) io.Reader { return rand.NewChaCha8([32]byte{seed}) }

func testSigningKey() *keys.Ed25519SecretKey {
	seed := [32]byte{42}
	return keys.NewEd25519SecretKeyFromSeed(&seed)
}

// newTestPair returns an outbound session at index and an inbound session
// created from its session key there.
func newTestPair(t testing.TB, index uint32) (*OutboundGroupSession, *InboundGroupSession) {
	t.Helper()
	out, err := NewOutboundGroupSession(testRand(1))
	if err != nil {
		t.Fatal(err)
	}
	out.ratchet.advanceTo(index)
	in, err := NewInboundGroupSession(out.SessionKey())
	if err != nil {
		t.Fatal(err)
	}
	return out, in
}

func mustEncrypt(t testing.TB, s *OutboundGroupSession, plaintext string) []byte {
	t.Helper()
	msg, err := s.Encrypt([]byte(plaintext))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestNewOutboundGroupSessionRandomLayout(t *testing.T) {
	random := make([]byte, outboundRandomSize)
	for i := range random {
		random[i] = byte(i * 7)
	}
	s, err := NewOutboundGroupSession(bytes.NewReader(random))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.ratchet.data[:], random[:ratchetSize]) || s.MessageIndex() != 0 {
		t.Fatal("the ratchet is not the first 128 bytes")
	}
	want := keys.NewEd25519SecretKeyFromSeed((*[32]byte)(random[ratchetSize:]))
	if !s.signingKey.Equal(want) || s.SigningKey() != want.PublicKey() || s.ID() != want.PublicKey().String() {
		t.Fatal("the signing key is not from the last 32 bytes")
	}

	if _, err := NewOutboundGroupSession(bytes.NewReader(random[:outboundRandomSize-1])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short randomness: %v", err)
	}
}

func TestOutboundEncryptAdvances(t *testing.T) {
	s, err := NewOutboundGroupSession(testRand(2))
	if err != nil {
		t.Fatal(err)
	}
	before := s.ratchet
	for i := range uint32(3) {
		if s.MessageIndex() != i {
			t.Fatalf("index %d, want %d", s.MessageIndex(), i)
		}
		msg := mustEncrypt(t, s, "hello")
		if msg[0] != 3 || msg[1] != 0x08 || msg[2] != byte(i) || msg[3] != 0x12 || msg[4] != 16 {
			t.Fatalf("message %d header % x", i, msg[:5])
		}
		if len(msg) != 5+16+8+64 {
			t.Fatalf("message %d is %d bytes", i, len(msg))
		}
	}
	before.advanceTo(3)
	if !before.equal(&s.ratchet) {
		t.Fatal("three encrypts are not three ratchet steps")
	}
}

func TestOutboundExhausted(t *testing.T) {
	s, err := NewOutboundGroupSession(testRand(4))
	if err != nil {
		t.Fatal(err)
	}
	s.ratchet.advanceTo(math.MaxUint32 - 1)
	if _, err := s.Encrypt([]byte("last")); err != nil {
		t.Fatal(err)
	}
	before := s.marshal()
	if _, err := s.Encrypt([]byte("one too many")); !errors.Is(err, ErrSessionExhausted) {
		t.Fatalf("encrypt at 2^32-1: %v", err)
	}
	if !bytes.Equal(before, s.marshal()) || s.MessageIndex() != math.MaxUint32 {
		t.Fatal("a refused encrypt changed the session")
	}
}

func TestOutboundClone(t *testing.T) {
	s, err := NewOutboundGroupSession(testRand(6))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Clone()
	mustEncrypt(t, c, "on the copy")
	if s.MessageIndex() != 0 || c.MessageIndex() != 1 {
		t.Fatal("encrypting on a clone changed the original")
	}
	if c.ID() != s.ID() {
		t.Fatal("a clone has another ID")
	}
}

// benchPlaintext is the 1 KiB payload of the benchmarks.
var benchPlaintext = bytes.Repeat([]byte("megolm benchmark"), 64)

func BenchmarkEncrypt(b *testing.B) {
	s, err := NewOutboundGroupSession(testRand(10))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPlaintext)))
	for b.Loop() {
		if _, err := s.Encrypt(benchPlaintext); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptFloor does only the primitives of one Encrypt, straight
// from the standard library: HKDF of the ratchet, AES-256-CBC of 1 KiB, the
// HMAC of the message, the Ed25519 signature and one ratchet-step HMAC. The
// ratio Encrypt/EncryptFloor is the package's overhead.
func BenchmarkEncryptFloor(b *testing.B) {
	var r [ratchetSize]byte
	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPlaintext)))
	for b.Loop() {
		k, _ := hkdf.Key(sha256.New, r[:], nil, "MEGOLM_KEYS", 80)
		block, _ := aes.NewCipher(k[:32])
		n := len(benchPlaintext) + 16 - len(benchPlaintext)%16
		msg := make([]byte, 8+n+8+64)
		ct := msg[8 : 8+n]
		copy(ct, benchPlaintext)
		for i := len(benchPlaintext); i < n; i++ {
			ct[i] = byte(n - len(benchPlaintext))
		}
		stdcipher.NewCBCEncrypter(block, k[64:80]).CryptBlocks(ct, ct)
		m := hmac.New(sha256.New, k[32:64])
		m.Write(msg[:8+n])
		m.Sum(msg[8+n : 8+n])
		copy(msg[8+n+8:], ed25519.Sign(priv, msg[:8+n+8]))
		step := hmac.New(sha256.New, r[96:])
		step.Write([]byte{3})
		step.Sum(r[96:96])
	}
}
