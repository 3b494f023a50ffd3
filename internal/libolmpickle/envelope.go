// Package libolmpickle reads and writes libolm's pickle format: a raw
// big-endian encoding of the object, encrypted with the AES-SHA2 construction
// keyed by HKDF(pickle key, "Pickle") and authenticated by an 8-byte HMAC over
// the ciphertext, then unpadded base64 (PROTOCOL.md §4.1).
package libolmpickle

import (
	"errors"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/cipher"
)

// MaxSize bounds an encoded pickle. The largest libolm object, an account
// with 100 one-time keys and two fallback keys, is under 7.5 KiB raw; a
// session with 5 receiver chains and 40 skipped keys under 3 KiB. 64 KiB
// leaves room and keeps a hostile input from costing more.
const MaxSize = 64 << 10

// ErrBadMAC reports a pickle that failed authentication: a wrong key or
// altered bytes. Nothing more specific is said.
var ErrBadMAC = errors.New("libolm pickle: authentication failed")

// ErrEncoding reports a pickle that is not base64, too short or too long.
var ErrEncoding = errors.New("libolm pickle: invalid encoding")

// Seal encrypts raw under key and returns the base64 pickle.
func Seal(key, raw []byte) string {
	k := cipher.Derive(key, cipher.InfoPickle)
	defer k.Clear()
	ct := k.Encrypt(nil, raw)
	mac := k.MAC(ct)
	return b64.Encode(append(ct, mac[:cipher.MACLength]...))
}

// Open authenticates and decrypts a base64 pickle.
func Open(key []byte, pickle string) ([]byte, error) {
	if len(pickle) > MaxSize {
		return nil, ErrEncoding
	}
	b, err := b64.Decode(pickle)
	if err != nil || len(b) < cipher.MACLength+16 {
		return nil, ErrEncoding
	}
	ct, mac := b[:len(b)-cipher.MACLength], b[len(b)-cipher.MACLength:]
	k := cipher.Derive(key, cipher.InfoPickle)
	defer k.Clear()
	if !k.VerifyTruncatedMAC(ct, mac) {
		return nil, ErrBadMAC
	}
	raw, err := k.Decrypt(ct)
	if err != nil {
		return nil, ErrBadMAC
	}
	return raw, nil
}
