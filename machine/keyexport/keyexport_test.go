package keyexport

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 1000, 100_000} {
		plaintext := make([]byte, n)
		rand.Read(plaintext)
		file, err := Encrypt(plaintext, "correct horse", 10, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decrypt(file, "correct horse")
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("%d bytes: round trip gave %d bytes, %v", n, len(got), err)
		}
		if _, err := Decrypt(file, "correct horsf"); err != ErrBadMAC {
			t.Fatalf("%d bytes, wrong passphrase: %v", n, err)
		}
	}
	// Empty and non-ASCII passphrases are bytes like any other.
	for _, pass := range []string{"", "пароль 🔑"} {
		file, err := Encrypt([]byte("[]"), pass, 1, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Decrypt(file, pass); err != nil || string(got) != "[]" {
			t.Fatalf("passphrase %q: %q, %v", pass, got, err)
		}
	}
}

// TestEncryptFormat pins the file layout: the armor lines, 96-column padded
// base64, the header fields, and bit 63 of the IV cleared even when the
// randomness sets it.
func TestEncryptFormat(t *testing.T) {
	allOnes := bytes.Repeat([]byte{0xff}, saltSize+ivSize)
	plaintext := bytes.Repeat([]byte("x"), 200)
	file, err := Encrypt(plaintext, "p", 1234, bytes.NewReader(allOnes))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(file), "\n")
	if lines[0] != armorBegin || lines[len(lines)-2] != armorEnd || lines[len(lines)-1] != "" {
		t.Fatalf("armor lines: first %q, last %q", lines[0], lines[len(lines)-2:])
	}
	body := lines[1 : len(lines)-2]
	for i, l := range body {
		if i < len(body)-1 && len(l) != lineLength || len(l) == 0 || len(l) > lineLength {
			t.Fatalf("line %d has %d characters", i, len(l))
		}
	}
	payload, err := base64.StdEncoding.Strict().DecodeString(strings.Join(body, ""))
	if err != nil {
		t.Fatalf("body is not padded standard base64: %v", err)
	}
	if len(file) != armoredSize(len(payload)) {
		t.Fatalf("file is %d bytes, armoredSize says %d", len(file), armoredSize(len(payload)))
	}
	if len(payload) != headerSize+len(plaintext)+macSize || payload[0] != 1 {
		t.Fatalf("payload of %d bytes, version %d", len(payload), payload[0])
	}
	if !bytes.Equal(payload[1:1+saltSize], allOnes[:saltSize]) {
		t.Fatalf("salt %x", payload[1:1+saltSize])
	}
	wantIV := bytes.Repeat([]byte{0xff}, ivSize)
	wantIV[8] = 0x7f
	if iv := payload[1+saltSize : 1+saltSize+ivSize]; !bytes.Equal(iv, wantIV) {
		t.Fatalf("iv %x, want %x", iv, wantIV)
	}
	if n := binary.BigEndian.Uint32(payload[1+saltSize+ivSize:]); n != 1234 {
		t.Fatalf("rounds %d", n)
	}
}

func TestEncryptErrors(t *testing.T) {
	if _, err := Encrypt(nil, "p", 0, rand.Reader); !errors.Is(err, ErrInvalidRounds) {
		t.Errorf("0 rounds: %v", err)
	}
	_, err := Encrypt(nil, "p", MaxRounds+1, rand.Reader)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "rounds" || le.Value != MaxRounds+1 || le.Max != MaxRounds ||
		!errors.Is(err, ErrInvalidRounds) || !strings.Contains(err.Error(), "10000001") || !strings.Contains(err.Error(), "10000000") {
		t.Errorf("MaxRounds+1: %v", err)
	}
	if _, err := Encrypt(nil, "p", 1, iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("Encrypt succeeded without randomness")
	}
	if _, err := Encrypt(nil, "p", 1, bytes.NewReader(make([]byte, saltSize+ivSize-1))); err == nil {
		t.Error("Encrypt succeeded with short randomness")
	}
	// Too large to fit MaxFileSize once armored. The slice is never touched,
	// so it costs no memory.
	_, err = Encrypt(make([]byte, MaxFileSize/4*3), "p", 1, rand.Reader)
	if !errors.As(err, &le) || le.Limit != "size" || le.Max != MaxFileSize || !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized plaintext: %v", err)
	}
}

// encryptedPayload encrypts plaintext under the passphrase "pass" and returns
// the file's payload.
func encryptedPayload(t *testing.T, plaintext string, rounds uint32) []byte {
	t.Helper()
	file, err := Encrypt([]byte(plaintext), "pass", rounds, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := dearmor(file)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// TestDecryptRejectsEveryBitFlip flips the lowest bit of each payload byte in
// turn: the version byte gives a *VersionError, the rounds field a round
// count error or a failed MAC, every other byte a failed MAC.
func TestDecryptRejectsEveryBitFlip(t *testing.T) {
	payload := encryptedPayload(t, `[{"a":1}]`, 1)
	for i := range payload {
		p := bytes.Clone(payload)
		p[i] ^= 1
		got, err := Decrypt(armor(p), "pass")
		if got != nil {
			t.Fatalf("byte %d: output %q", i, got)
		}
		roundsField := i >= 1+saltSize+ivSize && i < headerSize
		switch {
		case i == 0:
			var ve *VersionError
			if !errors.As(err, &ve) || ve.Version != 0 || !errors.Is(err, ErrInvalidFile) {
				t.Fatalf("byte 0: %v", err)
			}
		case roundsField && errors.Is(err, ErrInvalidRounds):
		case err != ErrBadMAC:
			t.Fatalf("byte %d: %v, want ErrBadMAC", i, err)
		}
	}
}

func TestDecryptRejections(t *testing.T) {
	payload := encryptedPayload(t, "secret", 1)
	withRounds := func(n uint32) []byte {
		p := bytes.Clone(payload)
		binary.BigEndian.PutUint32(p[1+saltSize+ivSize:], n)
		return armor(p)
	}
	good := string(armor(payload))
	cases := []struct {
		name string
		file string
		want error
	}{
		{"empty", "", ErrInvalidFile},
		{"no armor", base64.StdEncoding.EncodeToString(payload), ErrInvalidFile},
		{"no END line", strings.TrimSuffix(good, armorEnd+"\n"), ErrInvalidFile},
		{"no BEGIN line", strings.TrimPrefix(good, armorBegin), ErrInvalidFile},
		{"text after END", good + "trailing\n", ErrInvalidFile},
		{"text before BEGIN", "x" + good, ErrInvalidFile},
		{"lower-case armor", strings.ToLower(armorBegin) + good[len(armorBegin):], ErrInvalidFile},
		{"invalid base64", strings.Replace(good, "\n", "\n!", 1), ErrInvalidFile},
		{"URL-safe alphabet", armorBegin + "\n" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 90)) + "\n" + armorEnd, ErrInvalidFile},
		{"excess padding", strings.Replace(good, "\n"+armorEnd, "==\n"+armorEnd, 1), ErrInvalidFile},
		{"truncated to the header", string(armor(payload[:headerSize+macSize-1])), ErrInvalidFile},
		{"no ciphertext", string(armor(payload[:headerSize+macSize])), ErrBadMAC},
		{"last byte cut", string(armor(payload[:len(payload)-1])), ErrBadMAC},
		{"byte appended", string(armor(append(bytes.Clone(payload), 0))), ErrBadMAC},
		{"zero rounds", string(withRounds(0)), ErrInvalidRounds},
		{"rounds over the limit", string(withRounds(MaxRounds + 1)), ErrInvalidRounds},
		{"largest rounds field", string(withRounds(1<<32 - 1)), ErrInvalidRounds},
	}
	for _, c := range cases {
		got, err := Decrypt([]byte(c.file), "pass")
		if !errors.Is(err, c.want) || got != nil {
			t.Errorf("%s: %q, %v; want %v", c.name, got, err, c.want)
		}
	}

	// A round count over the limit is refused before any PBKDF2 work, and
	// the error says both numbers.
	_, err := Decrypt(withRounds(4_000_000_000), "pass")
	var le *LimitError
	if !errors.As(err, &le) || le.Value != 4_000_000_000 || le.Max != MaxRounds ||
		!strings.Contains(err.Error(), "4000000000") || !strings.Contains(err.Error(), "10000000") {
		t.Errorf("rounds 4e9: %v", err)
	}

	// An oversized file is refused before it is read. Never touched, the
	// slice costs no memory.
	_, err = Decrypt(make([]byte, MaxFileSize+1), "pass")
	if !errors.As(err, &le) || le.Limit != "size" || le.Value != MaxFileSize+1 || !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized file: %v", err)
	}
}

// TestMACCheckedBeforeDecrypting changes only the ciphertext and the MAC
// together, as an attacker without the passphrase can: the result is
// ErrBadMAC, never altered plaintext.
func TestMACCheckedBeforeDecrypting(t *testing.T) {
	payload := encryptedPayload(t, "attack at dawn", 1)
	p := bytes.Clone(payload)
	p[headerSize] ^= 'd' ^ 'D' // would flip the plaintext's first letter's case
	for i := len(p) - macSize; i < len(p); i++ {
		p[i] = 0
	}
	if got, err := Decrypt(armor(p), "pass"); err != ErrBadMAC || got != nil {
		t.Fatalf("%q, %v", got, err)
	}
}

func BenchmarkDecrypt1MiB(b *testing.B) {
	plaintext := make([]byte, 1<<20)
	file, err := Encrypt(plaintext, "p", 1, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decrypt(file, "p"); err != nil {
			b.Fatal(err)
		}
	}
}

// referenceCTR64 is AES-CTR with a 64-bit counter written out block by block,
// straight from WebCrypto's definition: the high 64 bits of the counter block
// stay fixed and the low 64 bits count modulo 2^64.
func referenceCTR64(key *[32]byte, iv *[ivSize]byte, src []byte) []byte {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	counter := *iv
	out := make([]byte, len(src))
	var stream [aes.BlockSize]byte
	for i := 0; i < len(src); i += aes.BlockSize {
		block.Encrypt(stream[:], counter[:])
		for j := i; j < len(src) && j < i+aes.BlockSize; j++ {
			out[j] = src[j] ^ stream[j-i]
		}
		binary.BigEndian.PutUint64(counter[8:], binary.BigEndian.Uint64(counter[8:])+1)
	}
	return out
}

// TestCTR64MatchesReference compares xorKeyStream with the reference around
// the wrap of the low half: for IVs whose low half is 0, 1 or 2^64-k for small
// k, and every length up to ten blocks.
func TestCTR64MatchesReference(t *testing.T) {
	var key [32]byte
	rand.Read(key[:])
	lows := []uint64{0, 1, 1 << 63, 1<<63 - 1}
	for k := uint64(1); k <= 6; k++ {
		lows = append(lows, -k)
	}
	src := make([]byte, 10*aes.BlockSize)
	rand.Read(src)
	for _, low := range lows {
		var iv [ivSize]byte
		rand.Read(iv[:8])
		binary.BigEndian.PutUint64(iv[8:], low)
		for n := 0; n <= len(src); n++ {
			want := referenceCTR64(&key, &iv, src[:n])
			got := make([]byte, n)
			xorKeyStream(&key, &iv, got, src[:n])
			if !bytes.Equal(got, want) {
				t.Fatalf("low half %#x, %d bytes: differs from the reference", low, n)
			}
			// In place, as Decrypt never does but a caller might.
			inPlace := bytes.Clone(src[:n])
			xorKeyStream(&key, &iv, inPlace, inPlace)
			if !bytes.Equal(inPlace, want) {
				t.Fatalf("low half %#x, %d bytes, in place: differs from the reference", low, n)
			}
		}
	}
}

// TestCTR64DiffersFromCarryingCTR shows the case the 64-bit counter exists
// for: once the low half wraps, crypto/cipher's CTR carries into the high
// half and produces another stream; before that, the two are the same.
func TestCTR64DiffersFromCarryingCTR(t *testing.T) {
	var key [32]byte
	rand.Read(key[:])
	var iv [ivSize]byte
	rand.Read(iv[:8])
	binary.BigEndian.PutUint64(iv[8:], 1<<64-2) // two blocks before the wrap
	src := make([]byte, 4*aes.BlockSize)
	ours := make([]byte, len(src))
	xorKeyStream(&key, &iv, ours, src)
	block, _ := aes.NewCipher(key[:])
	carrying := make([]byte, len(src))
	cipher.NewCTR(block, iv[:]).XORKeyStream(carrying, src)
	if !bytes.Equal(ours[:2*aes.BlockSize], carrying[:2*aes.BlockSize]) {
		t.Fatal("the streams differ before the wrap")
	}
	for b := 2; b < 4; b++ {
		if bytes.Equal(ours[b*aes.BlockSize:(b+1)*aes.BlockSize], carrying[b*aes.BlockSize:(b+1)*aes.BlockSize]) {
			t.Fatalf("block %d, after the wrap, is the same in both streams", b)
		}
	}
}

func TestFileKeysCleared(t *testing.T) {
	k, err := deriveKeys("p", make([]byte, saltSize), 1)
	if err != nil {
		t.Fatal(err)
	}
	if k.aes == [32]byte{} || k.mac == [32]byte{} || k.aes == k.mac {
		t.Fatal("derived keys are zero or equal")
	}
	k.clear()
	if k.aes != [32]byte{} || k.mac != [32]byte{} {
		t.Fatal("clear left key bytes")
	}
}
