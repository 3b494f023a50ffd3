package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func mustHex32(t testing.TB, s string) *[32]byte {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hex %q", s)
	}
	return (*[32]byte)(b)
}

// RFC 7748 §5.2 test vectors for the X25519 function.
func TestX25519RFC7748(t *testing.T) {
	for _, v := range []struct{ k, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
	} {
		var out [32]byte
		if !x25519(&out, mustHex32(t, v.k), mustHex32(t, v.u)) || hex.EncodeToString(out[:]) != v.out {
			t.Errorf("x25519 = %x, want %s", out, v.out)
		}
	}
	// Iterated test, 1000 rounds.
	k, u := [32]byte{9}, [32]byte{9}
	for i := 0; i < 1000; i++ {
		var out [32]byte
		x25519(&out, &k, &u)
		u, k = k, out
	}
	if got := hex.EncodeToString(k[:]); got != "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51" {
		t.Errorf("1000 iterations = %s", got)
	}
}

// RFC 7748 §6.1 Diffie-Hellman example, also libolm tests/test_crypto.cpp.
func TestCurve25519RFC7748DH(t *testing.T) {
	alice := NewCurve25519SecretKeyFromArray(mustHex32(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	bob := NewCurve25519SecretKeyFromArray(mustHex32(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
	if got := hex.EncodeToString(alice.pub.b[:]); got != "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" {
		t.Errorf("alice pub %s", got)
	}
	if got := hex.EncodeToString(bob.pub.b[:]); got != "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f" {
		t.Errorf("bob pub %s", got)
	}
	s1, err1 := alice.SharedSecret(bob.PublicKey())
	s2, err2 := bob.SharedSecret(alice.PublicKey())
	if err1 != nil || err2 != nil || s1 != s2 || hex.EncodeToString(s1[:]) != "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" {
		t.Errorf("shared %x %x %v %v", s1, s2, err1, err2)
	}
}

func TestCurve25519MatchesCryptoECDH(t *testing.T) {
	for i := 0; i < 50; i++ {
		a, _ := GenerateCurve25519SecretKey(rand.Reader)
		b, _ := GenerateCurve25519SecretKey(rand.Reader)
		ea, _ := ecdh.X25519().NewPrivateKey(a.priv[:])
		eb, _ := ecdh.X25519().NewPrivateKey(b.priv[:])
		if !bytes.Equal(ea.PublicKey().Bytes(), a.pub.b[:]) {
			t.Fatal("public key differs from crypto/ecdh")
		}
		want, _ := ea.ECDH(eb.PublicKey())
		got, err := a.SharedSecret(b.PublicKey())
		if err != nil || !bytes.Equal(got[:], want) {
			t.Fatal("shared secret differs from crypto/ecdh")
		}
	}
}

func TestCurve25519RejectsNonContributory(t *testing.T) {
	k, _ := GenerateCurve25519SecretKey(rand.Reader)
	// Zero and one are low-order points whose multiples are the identity.
	for _, p := range [][32]byte{{}, {1}} {
		if _, err := k.SharedSecret(Curve25519PublicKey{b: p}); err != ErrNonContributory {
			t.Errorf("point %x: err = %v", p[:1], err)
		}
	}
}

// An expanded key (libolm's storage form) signs exactly like the seed key it
// came from, and both are valid RFC 8032 signatures.
func TestEd25519ExpandedSignsLikeSeed(t *testing.T) {
	for i := 0; i < 20; i++ {
		var seed [32]byte
		rand.Read(seed[:])
		a := NewEd25519SecretKeyFromSeed(&seed)
		exp := a.Expanded()
		b := NewEd25519SecretKeyFromExpanded(&exp)
		if a.PublicKey() != b.PublicKey() {
			t.Fatal("public keys differ")
		}
		msg := []byte(fmt.Sprintf("message %d", i))
		s1, s2 := a.Sign(msg), b.Sign(msg)
		if !bytes.Equal(s1, s2) || !a.PublicKey().Verify(msg, s2) {
			t.Fatal("expanded signature differs")
		}
		if b.Expanded() != exp || !a.Equal(b) {
			t.Fatal("expanded form not preserved")
		}
		if _, ok := b.Seed(); ok {
			t.Fatal("expanded key claims a seed")
		}
	}
}

// vodozemac exports SHA-512(seed) without clamping; importing it must clamp so
// that signatures stay valid.
func TestEd25519UnclampedExpandedIsClamped(t *testing.T) {
	var seed [32]byte
	rand.Read(seed[:])
	a := NewEd25519SecretKeyFromSeed(&seed)
	unclamped := a.Expanded()
	unclamped[0] |= 7
	unclamped[31] |= 0x80
	unclamped[31] &^= 0x40
	b := NewEd25519SecretKeyFromExpanded(&unclamped)
	if b.PublicKey() != a.PublicKey() || !a.PublicKey().Verify([]byte("x"), b.Sign([]byte("x"))) {
		t.Fatal("unclamped expanded key signs invalidly")
	}
	if b.Expanded() != a.Expanded() {
		t.Fatal("stored expanded key is not clamped")
	}
}

// RFC 8032 §7.1 TEST 2.
func TestEd25519RFC8032(t *testing.T) {
	k := NewEd25519SecretKeyFromSeed(mustHex32(t, "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
	if hex.EncodeToString(k.pub.b[:]) != "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c" {
		t.Fatal("public key")
	}
	want := "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
	exp := k.Expanded()
	for _, key := range []*Ed25519SecretKey{k, NewEd25519SecretKeyFromExpanded(&exp)} {
		if got := hex.EncodeToString(key.Sign([]byte{0x72})); got != want {
			t.Errorf("signature %s", got)
		}
	}
	sig, _ := hex.DecodeString(want)
	if !k.PublicKey().Verify([]byte{0x72}, sig) || k.PublicKey().Verify([]byte{0x73}, sig) || k.PublicKey().Verify([]byte{0x72}, sig[:63]) {
		t.Fatal("verify")
	}
}

// Invariant 14: secrets never print.
func TestSecretsNeverPrint(t *testing.T) {
	var seed [32]byte
	for i := range seed {
		seed[i] = 0xAB
	}
	c := NewCurve25519SecretKeyFromArray(&seed)
	e := NewEd25519SecretKeyFromSeed(&seed)
	for _, v := range []any{c, e} {
		var logs bytes.Buffer
		slog.New(slog.NewTextHandler(&logs, nil)).Info("k", "key", v)
		outs := []string{logs.String()}
		for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			outs = append(outs, fmt.Sprintf(f, v))
		}
		for _, out := range outs {
			if !strings.Contains(out, "redacted") || strings.Contains(strings.ToLower(out), "abab") || strings.Contains(out, "q6ur") {
				t.Errorf("leaks or lacks redaction: %s", out)
			}
		}
	}
	if got := fmt.Sprint(c); got != "Curve25519SecretKey{public:"+c.PublicKey().String()+", secret:redacted}" {
		t.Errorf("pinned output changed: %s", got)
	}
}

func TestParsePublicKeys(t *testing.T) {
	c, _ := GenerateCurve25519SecretKey(rand.Reader)
	s := c.PublicKey().String()
	if len(s) != 43 {
		t.Fatal(len(s))
	}
	p, err := ParseCurve25519PublicKey(s + "=")
	if err != nil || p != c.PublicKey() {
		t.Fatal("padded parse")
	}
	for _, bad := range []string{"", s[:42], s + "A", "!" + s[1:]} {
		if _, err := ParseCurve25519PublicKey(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
		if _, err := ParseEd25519PublicKey(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	var u Curve25519PublicKey
	if err := u.UnmarshalText([]byte(s)); err != nil || u != p {
		t.Fatal("UnmarshalText")
	}
}

func BenchmarkX25519Ladder(b *testing.B) {
	k, _ := GenerateCurve25519SecretKey(rand.Reader)
	p, _ := GenerateCurve25519SecretKey(rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		k.SharedSecret(p.PublicKey())
	}
}

func BenchmarkX25519CryptoECDH(b *testing.B) {
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	p, _ := ecdh.X25519().GenerateKey(rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		k.ECDH(p.PublicKey())
	}
}

func BenchmarkCurve25519Generate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		GenerateCurve25519SecretKey(rand.Reader)
	}
}

func BenchmarkEd25519SignExpanded(b *testing.B) {
	var seed [32]byte
	exp := NewEd25519SecretKeyFromSeed(&seed).Expanded()
	k := NewEd25519SecretKeyFromExpanded(&exp)
	b.ReportAllocs()
	for b.Loop() {
		k.Sign([]byte("message"))
	}
}

func BenchmarkEd25519SignStd(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(priv, []byte("message"))
	}
}
