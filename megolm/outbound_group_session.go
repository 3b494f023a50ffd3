package megolm

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"

	"github.com/xolm/xolm/internal/cipher"
	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/wire"
)

// outboundRandomSize is what NewOutboundGroupSession reads: the ratchet, then
// the Ed25519 seed, in libolm's order.
const outboundRandomSize = ratchetSize + 32

// OutboundGroupSession is the sending side of a Megolm session: a ratchet and
// the Ed25519 key that signs every message. Its ID is the public half of that
// key.
//
// Share the session with [OutboundGroupSession.SessionKey] (in m.room_key) and
// encrypt with [OutboundGroupSession.Encrypt], which advances the ratchet.
// Persist the advanced session before sending the message, so that no index is
// used twice after a crash.
//
// An OutboundGroupSession is not safe for concurrent use.
type OutboundGroupSession struct {
	ratchet    ratchet
	signingKey *keys.Ed25519SecretKey // never modified after construction
}

// NewOutboundGroupSession creates a session from 160 bytes of rand: 128 for
// the ratchet, then the 32-byte Ed25519 seed (libolm's order, so a fixed
// stream gives libolm's session). Its message index starts at 0.
func NewOutboundGroupSession(rand io.Reader) (*OutboundGroupSession, error) {
	var buf [outboundRandomSize]byte
	defer clear(buf[:])
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return nil, fmt.Errorf("megolm: new outbound group session: reading randomness: %w", err)
	}
	s := &OutboundGroupSession{}
	copy(s.ratchet.data[:], buf[:ratchetSize])
	seed := (*[32]byte)(buf[ratchetSize:])
	s.signingKey = keys.NewEd25519SecretKeyFromSeed(seed)
	return s, nil
}

// ID returns the session ID: the unpadded base64 of the session's Ed25519
// public key.
func (s *OutboundGroupSession) ID() string { return s.signingKey.PublicKey().String() }

// SigningKey returns the session's Ed25519 public key, whose base64 form is
// the session ID.
func (s *OutboundGroupSession) SigningKey() Ed25519PublicKey { return s.signingKey.PublicKey() }

// MessageIndex returns the index the next message will be encrypted at.
func (s *OutboundGroupSession) MessageIndex() uint32 { return s.ratchet.counter }

// Encrypt encrypts plaintext at the current message index and advances the
// ratchet. It returns the raw message; Matrix events carry it in unpadded
// base64. It fails only with ErrSessionExhausted, at index 2^32-1.
func (s *OutboundGroupSession) Encrypt(plaintext []byte) ([]byte, error) {
	if s.ratchet.counter == math.MaxUint32 {
		return nil, ErrSessionExhausted
	}
	msg := sealMessage(&s.ratchet, s.signingKey, plaintext)
	s.ratchet.advance()
	return msg, nil
}

// SessionKey returns the signed session-sharing key at the current message
// index (229 bytes, version 2), as sent in m.room_key. A receiver can decrypt
// every message from this index on. The bytes are secret and the caller's to
// wipe.
func (s *OutboundGroupSession) SessionKey() []byte {
	return encodeSessionKey(&s.ratchet, s.signingKey)
}

// Clone returns an independent copy, so that a caller can encrypt on the copy
// and keep the original if persisting the advanced copy fails.
func (s *OutboundGroupSession) Clone() *OutboundGroupSession {
	c := *s
	return &c
}

// A Megolm message (PROTOCOL.md §3.2) is
//
//	0x03 ‖ 0x08 varint(index) ‖ 0x12 varint(len) ciphertext ‖ MAC(8) ‖ signature(64)
//
// The ciphertext is AES-256-CBC under keys derived from the ratchet at index;
// the MAC is HMAC-SHA-256 over everything before it, truncated to 8 bytes; the
// Ed25519 signature, by the session's signing key, covers everything before
// it, the MAC included.
//
// sealMessage encrypts plaintext under the ratchet's current keys and returns
// the complete, MACed and signed message. It does not advance the ratchet.
func sealMessage(r *ratchet, signer *keys.Ed25519SecretKey, plaintext []byte) []byte {
	k := r.keys()
	defer k.Clear()
	msg := wire.EncodeMegolmMessage(r.counter, k.Encrypt(nil, plaintext))
	n := len(msg)
	mac := k.MAC(wire.MegolmMACCovered(msg))
	copy(msg[n-wire.SignatureLength-cipher.MACLength:], mac[:cipher.MACLength])
	copy(msg[n-wire.SignatureLength:], signer.Sign(wire.MegolmSignatureCovered(msg)))
	return msg
}

// String returns the session's ID and message index, never its ratchet or
// private key. Every formatting path (%v, %+v, %#v, %s, %x, %q, slog) prints
// the same. These methods have value receivers so that a dereferenced session,
// fmt.Print(*s), is redacted too; fmt would otherwise print its fields.
func (s OutboundGroupSession) String() string {
	if s.signingKey == nil {
		return "megolm.OutboundGroupSession{}"
	}
	return "megolm.OutboundGroupSession{id:" + s.ID() +
		", index:" + strconv.FormatUint(uint64(s.ratchet.counter), 10) + ", secrets:redacted}"
}

// GoString implements fmt.GoStringer with the redacted form.
func (s OutboundGroupSession) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb reaches the secrets.
func (s OutboundGroupSession) Format(f fmt.State, _ rune) { f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s OutboundGroupSession) LogValue() slog.Value {
	if s.signingKey == nil {
		return slog.GroupValue()
	}
	return slog.GroupValue(slog.String("id", s.ID()), slog.Uint64("index", uint64(s.ratchet.counter)))
}

var (
	_ fmt.Formatter  = OutboundGroupSession{}
	_ fmt.GoStringer = OutboundGroupSession{}
	_ slog.LogValuer = OutboundGroupSession{}
)
