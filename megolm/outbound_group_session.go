package megolm

import (
	"fmt"
	"io"
	"math"

	"github.com/xolm/xolm/internal/keys"
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
