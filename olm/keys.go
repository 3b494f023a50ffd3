package olm

import (
	"encoding/binary"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/keys"
)

// Curve25519PublicKey is a Curve25519 public key: an identity key, a one-time
// key, a base key or a ratchet key. It prints as unpadded base64.
type Curve25519PublicKey = keys.Curve25519PublicKey

// Ed25519PublicKey is an Ed25519 public key, the account's signing
// ("fingerprint") key. It prints as unpadded base64.
type Ed25519PublicKey = keys.Ed25519PublicKey

// ParseCurve25519PublicKey parses a key in unpadded base64 (padding is
// tolerated). The key must decode to exactly 32 bytes.
func ParseCurve25519PublicKey(s string) (Curve25519PublicKey, error) {
	return keys.ParseCurve25519PublicKey(s)
}

// ParseEd25519PublicKey parses a key in unpadded base64 (padding is
// tolerated). The key must decode to exactly 32 bytes.
func ParseEd25519PublicKey(s string) (Ed25519PublicKey, error) {
	return keys.ParseEd25519PublicKey(s)
}

// IdentityKeys are an account's long-term public keys.
type IdentityKeys struct {
	Curve25519 Curve25519PublicKey // the Diffie-Hellman identity ("sender") key
	Ed25519    Ed25519PublicKey    // the signing ("fingerprint") key
}

// KeyID identifies a one-time or fallback key. IDs come from one counter per
// account that starts at 1 and is never reused, as in libolm.
type KeyID uint32

// String returns the ID as Matrix and libolm write it: the unpadded base64 of
// its big-endian four bytes ("AAAAAQ" for 1).
func (id KeyID) String() string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(id))
	return b64.Encode(b[:])
}

// OneTimeKey is the public half of a one-time or fallback key with its ID.
type OneTimeKey struct {
	ID  KeyID
	Key Curve25519PublicKey
}

// appendKeyMapJSON appends libolm's key-map JSON, {"curve25519":{"<id>":"<key>",…}},
// with the keys in the order given.
func appendKeyMapJSON(b []byte, ks []OneTimeKey) []byte {
	b = append(b, `{"curve25519":{`...)
	for i, k := range ks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k.ID.String()...)
		b = append(b, `":"`...)
		b = append(b, k.Key.String()...)
		b = append(b, '"')
	}
	return append(b, "}}"...)
}
