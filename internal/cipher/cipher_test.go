package cipher

import (
	"bytes"
	"crypto/aes"
	gocipher "crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// RFC 5869 test case 1, also used by libolm tests/test_crypto.cpp.
func TestHKDFRFC5869Case1(t *testing.T) {
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	salt, _ := hex.DecodeString("000102030405060708090a0b0c")
	info, _ := hex.DecodeString("f0f1f2f3f4f5f6f7f8f9")
	okm, err := hkdf.Key(sha256.New, ikm, salt, string(info), 42)
	if err != nil {
		t.Fatal(err)
	}
	want := "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
	if hex.EncodeToString(okm) != want {
		t.Fatalf("okm = %x", okm)
	}
}

// libolm uses 32 zero bytes as the "default salt" and vodozemac uses [0]; both
// equal a nil salt because HMAC zero-pads its key. Derive relies on that.
func TestZeroSaltEquivalence(t *testing.T) {
	ikm := []byte("some input key material")
	a, _ := hkdf.Key(sha256.New, ikm, nil, "OLM_KEYS", 80)
	b, _ := hkdf.Key(sha256.New, ikm, make([]byte, 32), "OLM_KEYS", 80)
	c, _ := hkdf.Key(sha256.New, ikm, []byte{0}, "OLM_KEYS", 80)
	if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
		t.Fatal("zero salts differ")
	}
}

// AES-256 with an all-zero key on an all-zero block, libolm tests/test_crypto.cpp.
func TestAESVector(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 32))
	out := make([]byte, 16)
	gocipher.NewCBCEncrypter(block, make([]byte, 16)).CryptBlocks(out, make([]byte, 16))
	if hex.EncodeToString(out) != "dc95c078a2408989ad48a21492842087" {
		t.Fatalf("got %x", out)
	}
}

func TestRoundTripAndPadding(t *testing.T) {
	k := Derive([]byte("key"), InfoOlmKeys)
	for n := 0; n < 70; n++ {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		ct := k.Encrypt(nil, pt)
		if len(ct) != CiphertextLen(n) || len(ct)%16 != 0 || len(ct) <= n {
			t.Fatalf("n=%d: len %d", n, len(ct))
		}
		got, err := k.Decrypt(ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
	prefix := []byte("hdr")
	ct := k.Encrypt(prefix, []byte("x"))
	if !bytes.HasPrefix(ct, []byte("hdr")) || len(ct) != 3+16 {
		t.Fatalf("append: %x", ct)
	}
}

func TestDecryptRejectsBadPadding(t *testing.T) {
	k := Derive([]byte("key"), InfoOlmKeys)
	block, _ := aes.NewCipher(k.aesKey[:])
	for _, last := range [][]byte{
		bytes.Repeat([]byte{0}, 16),                     // pad byte 0
		append(bytes.Repeat([]byte{1}, 15), 17),         // pad byte > 16
		append(bytes.Repeat([]byte{9}, 14), 3, 2),       // inconsistent pad bytes
		append(bytes.Repeat([]byte{0xaa}, 13), 4, 4, 4), // pad says 4, only 3 match
	} {
		ct := make([]byte, 16)
		gocipher.NewCBCEncrypter(block, k.iv[:]).CryptBlocks(ct, last)
		if _, err := k.Decrypt(ct); err != ErrBadPadding {
			t.Errorf("%x: err = %v", last, err)
		}
	}
	for _, ct := range [][]byte{nil, make([]byte, 15), make([]byte, 17)} {
		if _, err := k.Decrypt(ct); err != ErrBadPadding {
			t.Errorf("len %d: err = %v", len(ct), err)
		}
	}
}

func TestTruncatedMAC(t *testing.T) {
	k := Derive([]byte("key"), InfoMegolmKeys)
	data := []byte("authenticated data")
	sum := k.MAC(data)
	if !k.VerifyTruncatedMAC(data, sum[:8]) {
		t.Fatal("valid MAC rejected")
	}
	bad := sum
	bad[7] ^= 1
	if k.VerifyTruncatedMAC(data, bad[:8]) || k.VerifyTruncatedMAC(data, sum[:7]) || k.VerifyTruncatedMAC(data, sum[:]) {
		t.Fatal("invalid MAC accepted")
	}
	k.Clear()
	if k.aesKey != [32]byte{} || k.macKey != [32]byte{} || k.iv != [16]byte{} {
		t.Fatal("Clear left key material")
	}
}

func BenchmarkDeriveEncryptMAC1KiB(b *testing.B) {
	pt := make([]byte, 1024)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		k := Derive(pt[:32], InfoOlmKeys)
		ct := k.Encrypt(buf[:0], pt)
		_ = k.MAC(ct)
	}
}
