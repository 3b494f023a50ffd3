package keyexport

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"testing"
)

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
