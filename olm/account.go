package olm

import (
	"fmt"
	"io"
	"log/slog"

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

// Account is a device's long-term Olm identity: an Ed25519 signing key, a
// Curve25519 identity key, and the one-time and fallback keys that peers claim
// to start sessions with it. Create one with [NewAccount], or restore one with
// [UnpickleAccount] or [ImportLibolmAccount].
//
// An Account is not safe for concurrent use. Every method either completes or
// leaves the account exactly as it was.
type Account struct {
	_ [0]func() // not comparable: holds secrets

	signing  *keys.Ed25519SecretKey
	identity *keys.Curve25519SecretKey

	// oneTimeKeys holds at most MaxOneTimeKeys keys, newest first.
	oneTimeKeys []*localKey
	// fallback and prevFallback are the current and previous fallback keys,
	// or nil.
	fallback, prevFallback *localKey
	// lastKeyID is the last ID given to a one-time or fallback key (libolm's
	// next_one_time_key_id); 0 before the first.
	lastKeyID uint32
}

// localKey is a one-time or fallback key pair with its ID.
type localKey struct {
	id        KeyID
	published bool
	key       *keys.Curve25519SecretKey
}

func (k *localKey) public() OneTimeKey { return OneTimeKey{ID: k.id, Key: k.key.PublicKey()} }

// accountRandomSize is what NewAccount reads: an Ed25519 seed and a
// Curve25519 private key, in libolm's order.
const accountRandomSize = 64

// NewAccount creates an account from exactly 64 bytes of rand: bytes 0–31 are
// the Ed25519 seed and bytes 32–63 the Curve25519 private key, as libolm
// reads them (so an account from the same bytes has the same keys in both).
// Pass crypto/rand.Reader outside tests.
func NewAccount(rand io.Reader) (*Account, error) {
	var b [accountRandomSize]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("olm: new account: reading randomness: %w", err)
	}
	seed, priv := (*[32]byte)(b[:32]), (*[32]byte)(b[32:])
	a := &Account{
		signing:  keys.NewEd25519SecretKeyFromSeed(seed),
		identity: keys.NewCurve25519SecretKeyFromArray(priv),
	}
	clear(b[:])
	return a, nil
}

// IdentityKeys returns the account's public identity keys.
func (a *Account) IdentityKeys() IdentityKeys {
	return IdentityKeys{Curve25519: a.identity.PublicKey(), Ed25519: a.signing.PublicKey()}
}

// IdentityKeysJSON returns the identity keys as libolm writes them, exactly:
// {"curve25519":"<key>","ed25519":"<key>"}.
func (a *Account) IdentityKeysJSON() []byte {
	ik := a.IdentityKeys()
	b := make([]byte, 0, 112)
	b = append(b, `{"curve25519":"`...)
	b = append(b, ik.Curve25519.String()...)
	b = append(b, `","ed25519":"`...)
	b = append(b, ik.Ed25519.String()...)
	return append(b, `"}`...)
}

// Sign returns the 64-byte Ed25519 signature of msg by the account's signing
// key (callers base64 it for Matrix).
func (a *Account) Sign(msg []byte) []byte { return a.signing.Sign(msg) }

// String describes the account by its public identity keys. No secret is
// printed.
func (a *Account) String() string {
	ik := a.IdentityKeys()
	return "olm.Account{curve25519:" + ik.Curve25519.String() + ", ed25519:" + ik.Ed25519.String() + ", secrets:redacted}"
}

// GoString is String, so that %#v prints no secret either.
func (a *Account) GoString() string { return a.String() }

// Format prints String for every verb, %x included.
func (a *Account) Format(f fmt.State, _ rune) { f.Write([]byte(a.String())) }

// LogValue implements slog.LogValuer with the redacted description.
func (a *Account) LogValue() slog.Value { return slog.StringValue(a.String()) }

var (
	_ fmt.Formatter  = (*Account)(nil)
	_ fmt.GoStringer = (*Account)(nil)
	_ slog.LogValuer = (*Account)(nil)
)
