// Package cipher is the "AES-SHA2" construction shared by Olm messages, Megolm
// messages and libolm pickles: HKDF-SHA-256 expands a secret into an AES-256 key,
// an HMAC-SHA-256 key and a CBC IV; the payload is AES-256-CBC with PKCS#7
// padding and is authenticated by an HMAC-SHA-256 truncated to 8 bytes.
//
// The same construction is used with three HKDF info strings (PROTOCOL.md §1).
package cipher

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// HKDF info strings, one per use of the construction.
const (
	InfoOlmKeys    = "OLM_KEYS"
	InfoMegolmKeys = "MEGOLM_KEYS"
	InfoPickle     = "Pickle"
)

// MACLength is the length of the truncated HMAC carried by Olm and Megolm
// messages and by libolm pickles.
const MACLength = 8

// ErrBadPadding reports ciphertext that decrypted to invalid PKCS#7 padding or
// whose length is not a positive multiple of the block size. Callers check the
// MAC first, so this only happens with a correctly authenticated but malformed
// payload.
var ErrBadPadding = errors.New("cipher: invalid ciphertext padding")

// Keys are the three secrets derived from one input key. They are secret;
// call Clear when done.
type Keys struct {
	_      [0]func() // not comparable: == on secrets is not constant time
	aesKey [32]byte
	macKey [32]byte
	iv     [16]byte
}

// Derive expands ikm with HKDF-SHA-256 (zero salt) and info into Keys.
func Derive(ikm []byte, info string) *Keys {
	out, err := hkdf.Key(sha256.New, ikm, nil, info, 80)
	if err != nil {
		panic("cipher: internal error: " + err.Error()) // only fails for absurd lengths
	}
	k := new(Keys)
	copy(k.aesKey[:], out[0:32])
	copy(k.macKey[:], out[32:64])
	copy(k.iv[:], out[64:80])
	clear(out)
	return k
}

// CiphertextLen returns the ciphertext length for a plaintext of n bytes: PKCS#7
// always adds between 1 and 16 bytes.
func CiphertextLen(n int) int { return n + aes.BlockSize - n%aes.BlockSize }

// Encrypt returns AES-256-CBC-PKCS7(plaintext) appended to dst.
func (k *Keys) Encrypt(dst, plaintext []byte) []byte {
	n := CiphertextLen(len(plaintext))
	dst = growLen(dst, n)
	out := dst[len(dst)-n:]
	copy(out, plaintext)
	pad := byte(n - len(plaintext))
	for i := len(plaintext); i < n; i++ {
		out[i] = pad
	}
	block, _ := aes.NewCipher(k.aesKey[:])
	cipher.NewCBCEncrypter(block, k.iv[:]).CryptBlocks(out, out)
	return dst
}

// Decrypt returns the plaintext of an AES-256-CBC-PKCS7 ciphertext, checking the
// padding strictly. It must only be called after the MAC has been verified.
func (k *Keys) Decrypt(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 || len(ciphertext)%aes.BlockSize != 0 {
		return nil, ErrBadPadding
	}
	out := make([]byte, len(ciphertext))
	block, _ := aes.NewCipher(k.aesKey[:])
	cipher.NewCBCDecrypter(block, k.iv[:]).CryptBlocks(out, ciphertext)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		clear(out)
		return nil, ErrBadPadding
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			clear(out)
			return nil, ErrBadPadding
		}
	}
	return out[:len(out)-pad], nil
}

// MAC returns the full HMAC-SHA-256 of data under the derived MAC key.
func (k *Keys) MAC(data []byte) [32]byte {
	h := hmac.New(sha256.New, k.macKey[:])
	h.Write(data)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// VerifyTruncatedMAC reports, in constant time, whether mac is the first
// MACLength bytes of the MAC of data.
func (k *Keys) VerifyTruncatedMAC(data, mac []byte) bool {
	if len(mac) != MACLength {
		return false
	}
	sum := k.MAC(data)
	return hmac.Equal(sum[:MACLength], mac)
}

// Clear overwrites the keys. Go cannot guarantee that no copy survives
// elsewhere in memory; this is best effort.
func (k *Keys) Clear() {
	clear(k.aesKey[:])
	clear(k.macKey[:])
	clear(k.iv[:])
}

func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
