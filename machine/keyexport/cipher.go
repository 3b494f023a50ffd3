package keyexport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
)

// fileKeys are the two keys PBKDF2 derives from the passphrase (spec "Key
// exports", step 2).
type fileKeys struct {
	aes [32]byte // K, the AES-256-CTR key: the first 256 bits
	mac [32]byte // K', the HMAC-SHA-256 key: the last 256 bits
}

// deriveKeys computes PBKDF2-HMAC-SHA-512(passphrase, salt, rounds, 512 bits)
// and splits it into the two keys. rounds has been checked against MaxRounds.
func deriveKeys(passphrase string, salt []byte, rounds uint32) (*fileKeys, error) {
	dk, err := pbkdf2.Key(sha512.New, passphrase, salt, int(rounds), 64)
	if err != nil {
		return nil, fmt.Errorf("deriving keys: %w", err)
	}
	k := new(fileKeys)
	copy(k.aes[:], dk[:32])
	copy(k.mac[:], dk[32:])
	clear(dk)
	return k, nil
}

// clear overwrites the keys (best effort: Go may have copied them).
func (k *fileKeys) clear() {
	clear(k.aes[:])
	clear(k.mac[:])
}

// xorKeyStream XORs src with the AES-256-CTR key stream of key and the initial
// counter block iv into dst, counting as WebCrypto's AES-CTR does with a
// counter length of 64 bits (the parameters Element exports with): only the
// low 64 bits of the counter block count, and they wrap from 2^64-1 to 0 while
// the high 64 bits stay as they are.
//
// crypto/cipher's CTR counts with the whole 128-bit block instead, carrying
// into the high half. The two agree on every block until the low half
// overflows, so the stream is cut there: crypto/cipher serves the blocks
// before, and a second stream restarted at a low half of zero those after.
// A slice holds far fewer than 2^64 blocks, so the low half overflows at most
// once. Files whose IV has bit 63 clear, as the spec asks, never overflow;
// Element's published test vectors include one that does.
func xorKeyStream(key *[32]byte, iv *[ivSize]byte, dst, src []byte) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("keyexport: internal error: " + err.Error())
	}
	split := len(src)
	blocks := (uint64(len(src)) + aes.BlockSize - 1) / aes.BlockSize
	if low := binary.BigEndian.Uint64(iv[8:]); low != 0 {
		if beforeWrap := -low; beforeWrap < blocks { // 2^64 - low counter values are left
			split = int(beforeWrap) * aes.BlockSize
		}
	}
	cipher.NewCTR(block, iv[:]).XORKeyStream(dst[:split], src[:split])
	if split < len(src) {
		var wrapped [ivSize]byte
		copy(wrapped[:8], iv[:8])
		cipher.NewCTR(block, wrapped[:]).XORKeyStream(dst[split:], src[split:])
	}
}
