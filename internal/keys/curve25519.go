// Package keys holds the Curve25519 and Ed25519 key types shared by the olm and
// megolm packages, which re-export them. Secret keys are opaque, cannot be
// compared with ==, and never print their value.
package keys

import (
	"errors"
	"fmt"
	"io"

	"github.com/xolm/xolm/internal/b64"
)

// KeySize is the length of Curve25519 keys and Ed25519 public keys.
const KeySize = 32

// ErrNonContributory reports a Diffie-Hellman exchange whose result is all
// zeros: the peer's public key is a low-order point. vodozemac rejects these
// too (PROTOCOL.md §1).
var ErrNonContributory = errors.New("keys: non-contributory curve25519 key")

// ErrInvalidKey reports key material of the wrong length or encoding.
var ErrInvalidKey = errors.New("keys: invalid key")

// Curve25519PublicKey is a Curve25519 public key. It prints as unpadded base64.
type Curve25519PublicKey struct {
	b [KeySize]byte
}

// NewCurve25519PublicKeyFromBytes returns the key with the 32 bytes b.
func NewCurve25519PublicKeyFromBytes(b []byte) (Curve25519PublicKey, error) {
	var k Curve25519PublicKey
	if len(b) != KeySize {
		return k, fmt.Errorf("%w: curve25519 public key is %d bytes, want %d", ErrInvalidKey, len(b), KeySize)
	}
	copy(k.b[:], b)
	return k, nil
}

// ParseCurve25519PublicKey parses an unpadded (or padded) base64 key.
func ParseCurve25519PublicKey(s string) (Curve25519PublicKey, error) {
	b, err := b64.Decode(s)
	if err != nil {
		return Curve25519PublicKey{}, fmt.Errorf("%w: curve25519 public key: %w", ErrInvalidKey, err)
	}
	return NewCurve25519PublicKeyFromBytes(b)
}

// Bytes returns a copy of the key's 32 bytes.
func (k Curve25519PublicKey) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Array returns the key's 32 bytes by value.
func (k Curve25519PublicKey) Array() [KeySize]byte { return k.b }

// String returns the key in unpadded base64.
func (k Curve25519PublicKey) String() string { return b64.Encode(k.b[:]) }

// IsZero reports whether k is the zero value (no key).
func (k Curve25519PublicKey) IsZero() bool { return k.b == [KeySize]byte{} }

// MarshalText implements encoding.TextMarshaler (unpadded base64).
func (k Curve25519PublicKey) MarshalText() ([]byte, error) { return b64.AppendEncode(nil, k.b[:]), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Curve25519PublicKey) UnmarshalText(text []byte) error {
	p, err := ParseCurve25519PublicKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// Curve25519SecretKey is a Curve25519 private key with its public key. Like
// libolm, it keeps the 32 private bytes unclamped; clamping happens inside the
// scalar multiplication.
type Curve25519SecretKey struct {
	_    [0]func() // not comparable: == on secrets is not constant time
	priv [KeySize]byte
	pub  Curve25519PublicKey
}

// GenerateCurve25519SecretKey reads exactly 32 bytes from rand.
func GenerateCurve25519SecretKey(rand io.Reader) (*Curve25519SecretKey, error) {
	var b [KeySize]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("keys: reading randomness: %w", err)
	}
	k := NewCurve25519SecretKeyFromArray(&b)
	clear(b[:])
	return k, nil
}

// NewCurve25519SecretKeyFromArray derives the public key from priv.
func NewCurve25519SecretKeyFromArray(priv *[KeySize]byte) *Curve25519SecretKey {
	k := &Curve25519SecretKey{priv: *priv}
	x25519Base(&k.pub.b, &k.priv)
	return k
}

// NewCurve25519SecretKeyFromParts rebuilds a key from stored private and public
// halves without recomputing the public key. Use it only with data that was
// authenticated (a decrypted pickle), where the halves are known to match.
func NewCurve25519SecretKeyFromParts(priv, pub *[KeySize]byte) *Curve25519SecretKey {
	return &Curve25519SecretKey{priv: *priv, pub: Curve25519PublicKey{b: *pub}}
}

// PublicKey returns the public half.
func (k *Curve25519SecretKey) PublicKey() Curve25519PublicKey { return k.pub }

// PrivateArray returns the private bytes by value. The copy is the caller's to
// wipe.
func (k *Curve25519SecretKey) PrivateArray() [KeySize]byte { return k.priv }

// SharedSecret returns X25519(k, peer), or ErrNonContributory when the result
// is all zeros.
func (k *Curve25519SecretKey) SharedSecret(peer Curve25519PublicKey) ([KeySize]byte, error) {
	var out [KeySize]byte
	if !x25519(&out, &k.priv, &peer.b) {
		return out, ErrNonContributory
	}
	return out, nil
}

// Equal reports in constant time whether both keys have the same private bytes.
func (k *Curve25519SecretKey) Equal(o *Curve25519SecretKey) bool {
	return constantTimeEqual(k.priv[:], o.priv[:])
}

// Clear overwrites the private bytes (best effort: Go may have copied them).
func (k *Curve25519SecretKey) Clear() { clear(k.priv[:]) }

func (k *Curve25519SecretKey) String() string { return redacted("Curve25519SecretKey", k.pub.String()) }
