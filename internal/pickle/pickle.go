// Package pickle is xolm's own at-rest format for protocol state: a small
// header, a random 192-bit nonce and XChaCha20-Poly1305 over the object's
// binary encoding. The associated data is the header plus whatever the caller
// binds (the store passes table, row key and schema version), so a blob moved
// to another row, or of another kind, fails to open.
package pickle

import (
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of a pickle key.
const KeySize = chacha20poly1305.KeySize

// MaxSize bounds a sealed blob, and so the work and memory an input can cost.
// The largest object, an account holding its full one-time key store, is
// well under 16 KiB.
const MaxSize = 256 << 10

// envelopeVersion is the first byte of every sealed blob.
const envelopeVersion = 1

const headerLen = 2

// Kind names the type of object in a blob; it is authenticated.
type Kind byte

// Kinds of pickled objects.
const (
	KindAccount       Kind = 1
	KindSession       Kind = 2
	KindOutboundGroup Kind = 3
	KindInboundGroup  Kind = 4
	KindOneTimeKey    Kind = 5
)

// ErrAuth reports a blob that failed authentication: wrong key, wrong
// associated data, wrong kind or altered bytes. Nothing more specific is said.
var ErrAuth = errors.New("pickle: authentication failed")

// ErrFormat reports a blob that cannot be a sealed pickle at all.
var ErrFormat = errors.New("pickle: invalid format")

// Seal encrypts plaintext. The result is
// version(1) ‖ kind(1) ‖ nonce(24) ‖ ciphertext ‖ tag(16).
func Seal(key *[KeySize]byte, kind Kind, ad, plaintext []byte) []byte {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("pickle: internal error: " + err.Error())
	}
	out := make([]byte, headerLen+chacha20poly1305.NonceSizeX, headerLen+chacha20poly1305.NonceSizeX+len(plaintext)+aead.Overhead())
	out[0], out[1] = envelopeVersion, byte(kind)
	rand.Read(out[headerLen:]) // never fails (crypto/rand, Go 1.24+)
	nonce := out[headerLen:]
	return aead.Seal(out, nonce, plaintext, associated(out[:headerLen], ad))
}

// Open authenticates and decrypts a blob of the given kind.
func Open(key *[KeySize]byte, kind Kind, ad, sealed []byte) ([]byte, error) {
	if len(sealed) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrFormat, len(sealed), MaxSize)
	}
	if len(sealed) < headerLen+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrFormat, len(sealed))
	}
	if sealed[0] != envelopeVersion {
		return nil, fmt.Errorf("%w: unknown envelope version %d", ErrFormat, sealed[0])
	}
	if Kind(sealed[1]) != kind {
		return nil, ErrAuth
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("pickle: internal error: " + err.Error())
	}
	nonce := sealed[headerLen : headerLen+chacha20poly1305.NonceSizeX]
	pt, err := aead.Open(nil, nonce, sealed[headerLen+chacha20poly1305.NonceSizeX:], associated(sealed[:headerLen], ad))
	if err != nil {
		return nil, ErrAuth
	}
	return pt, nil
}

func associated(header, ad []byte) []byte {
	out := make([]byte, 0, len(header)+len(ad))
	return append(append(out, header...), ad...)
}
