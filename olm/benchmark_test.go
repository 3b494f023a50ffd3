package olm

import (
	"crypto/aes"
	gocipher "crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/xolm/xolm/internal/keys"
)

// Each benchmark of an operation has a floor benchmark beside it that runs
// only the primitives the operation cannot avoid (the same X25519 exchanges
// and key generations, HKDF, AES-256-CBC and HMAC-SHA-256 calls, straight
// from the standard library and internal/keys), so that op/floor can be read
// from one run. The plaintext is 1 KiB and all randomness is deterministic.

var benchPlaintext = make([]byte, 1024)

// benchRand serves the same bytes forever; it is cheaper than any real
// source so that it does not weigh on the ratios.
type benchRand struct{}

func (benchRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*29 + 3)
	}
	return len(p), nil
}

// floorMessage performs the primitives of encrypting or decrypting one Olm
// message: message key and next chain key (2 HMACs), the message keys (HKDF
// to 80 bytes), AES-256-CBC over the plaintext and the MAC over the message.
func floorMessage(chain *[32]byte, msgLen int, decrypt bool) {
	h := hmac.New(sha256.New, chain[:])
	h.Write([]byte{messageKeySeed})
	mk := h.Sum(nil)
	h = hmac.New(sha256.New, chain[:])
	h.Write([]byte{chainKeySeed})
	h.Sum(nil)
	k, _ := hkdf.Key(sha256.New, mk, nil, "OLM_KEYS", 80)
	block, _ := aes.NewCipher(k[:32])
	buf := make([]byte, len(benchPlaintext)+16)
	if decrypt {
		gocipher.NewCBCDecrypter(block, k[64:80]).CryptBlocks(buf, buf)
	} else {
		gocipher.NewCBCEncrypter(block, k[64:80]).CryptBlocks(buf, buf)
	}
	mac := hmac.New(sha256.New, k[32:64])
	mac.Write(make([]byte, msgLen-8))
	mac.Sum(nil)
}

// floorSetup performs the primitives of session setup: gen key generations,
// three X25519 exchanges and the root HKDF.
func floorSetup(ours *keys.Curve25519SecretKey, theirs Curve25519PublicKey, gen int) {
	var seed [32]byte
	for range gen {
		keys.NewCurve25519SecretKeyFromArray(&seed)
	}
	var secret [96]byte
	for i := range 3 {
		s, _ := ours.SharedSecret(theirs)
		copy(secret[32*i:], s[:])
	}
	hkdf.Key(sha256.New, secret[:], nil, infoRoot, 64)
}

type benchSetup struct {
	alice, bob *Account
	preKey     []byte // a pre-key message to bob's fallback key
	msgLen     int
}

func newBenchSetup(b *testing.B) *benchSetup {
	alice, bob := newAccount(b, 1, 0), newAccount(b, 2, 0)
	bob.GenerateFallbackKey(benchRand{})
	fk, _ := bob.FallbackKey()
	out, err := alice.NewOutboundSession(benchRand{}, bob.IdentityKeys().Curve25519, fk.Key)
	if err != nil {
		b.Fatal(err)
	}
	_, body, _ := out.Encrypt(benchRand{}, benchPlaintext)
	return &benchSetup{alice: alice, bob: bob, preKey: body, msgLen: len(body)}
}

func BenchmarkOutboundSessionFirstEncrypt(b *testing.B) {
	s := newBenchSetup(b)
	fk, _ := s.bob.FallbackKey()
	b.ReportAllocs()
	for b.Loop() {
		out, _ := s.alice.NewOutboundSession(benchRand{}, s.bob.IdentityKeys().Curve25519, fk.Key)
		out.Encrypt(benchRand{}, benchPlaintext)
	}
}

func BenchmarkOutboundSessionFirstEncryptFloor(b *testing.B) {
	s := newBenchSetup(b)
	fk, _ := s.bob.FallbackKey()
	var chain [32]byte
	b.ReportAllocs()
	for b.Loop() {
		floorSetup(s.alice.identity, fk.Key, 2)
		floorMessage(&chain, s.msgLen, false)
	}
}

func BenchmarkInboundSessionFirstDecrypt(b *testing.B) {
	s := newBenchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		pre, _ := ParsePreKeyMessage(s.preKey)
		if _, _, err := s.bob.NewInboundSession(nil, pre); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInboundSessionFirstDecryptFloor(b *testing.B) {
	s := newBenchSetup(b)
	var chain [32]byte
	b.ReportAllocs()
	for b.Loop() {
		floorSetup(s.bob.identity, s.alice.IdentityKeys().Curve25519, 0)
		floorMessage(&chain, s.msgLen, true)
	}
}

// benchSessions returns an established pair and one normal message from
// Bob to Alice on a chain Alice already knows, with Alice's state before it.
func benchSessions(b *testing.B) (alice, bob *Session, msg []byte, before chainKey) {
	alice, bob = newSessionPair(b)
	encryptAndDeliver(b, bob, alice)
	_, msg, _ = bob.Encrypt(benchRand{}, benchPlaintext)
	return alice, bob, msg, alice.ratchet.receivers[0].chain
}

func BenchmarkEncrypt(b *testing.B) {
	_, bob, _, _ := benchSessions(b)
	b.ReportAllocs()
	for b.Loop() {
		bob.Encrypt(benchRand{}, benchPlaintext)
	}
}

func BenchmarkEncryptFloor(b *testing.B) {
	_, _, msg, _ := benchSessions(b)
	var chain [32]byte
	b.ReportAllocs()
	for b.Loop() {
		floorMessage(&chain, len(msg), false)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	alice, _, msg, before := benchSessions(b)
	b.ReportAllocs()
	for b.Loop() {
		alice.ratchet.receivers[0].chain = before // the message is new again
		if _, err := alice.Decrypt(MessageTypeNormal, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecryptFloor(b *testing.B) {
	_, _, msg, _ := benchSessions(b)
	var chain [32]byte
	b.ReportAllocs()
	for b.Loop() {
		floorMessage(&chain, len(msg), true)
	}
}
