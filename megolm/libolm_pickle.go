package megolm

import (
	"errors"
	"fmt"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/libolmpickle"
)

// libolm's raw pickle layouts (PROTOCOL.md §4.2), sealed with its AES-SHA2
// "Pickle" envelope:
//
//	outbound v1: u32 1 ‖ R(128) ‖ u32 counter ‖ Ed25519 public key(32) ‖
//	             expanded private key(64)
//	inbound v1:  u32 1 ‖ initial{R(128) ‖ u32} ‖ latest{R(128) ‖ u32} ‖
//	             public key(32)                      (read as verified)
//	inbound v2:  v1 ‖ u8 signing key verified
const (
	libolmOutboundVersion   = 1
	libolmInboundVersionOld = 1
	libolmInboundVersion    = 2
)

// LibolmPickle returns the session in libolm's pickle format (version 1),
// encrypted under key (any length; libolm derives its keys from it with HKDF).
// libolm's envelope uses an IV derived from the key alone, so the same key
// must not protect many different pickles where that matters.
func (s *OutboundGroupSession) LibolmPickle(key []byte) string {
	var e libolmpickle.Encoder
	e.U32(libolmOutboundVersion)
	e.Bytes(s.ratchet.data[:])
	e.U32(s.ratchet.counter)
	pub := s.signingKey.PublicKey().Array()
	e.Bytes(pub[:])
	expanded := s.signingKey.Expanded()
	e.Bytes(expanded[:])
	clear(expanded[:])
	raw := e.Result()
	defer clear(raw)
	return libolmpickle.Seal(key, raw)
}

// ImportLibolmOutboundGroupSession reads an outbound group session pickled by
// libolm (version 1) under key. A wrong key or altered pickle is
// ErrPickleAuth. The stored public key must match the private key.
func ImportLibolmOutboundGroupSession(pickle string, key []byte) (*OutboundGroupSession, error) {
	raw, err := openLibolmPickle(pickle, key)
	if err != nil {
		return nil, fmt.Errorf("megolm: import libolm outbound group session: %w", err)
	}
	defer clear(raw)
	d, _, err := versionedDecoder(raw, "libolm", libolmOutboundVersion)
	if err != nil {
		return nil, fmt.Errorf("megolm: import libolm outbound group session: %w", err)
	}
	s := &OutboundGroupSession{}
	s.ratchet.data = d.Array128("ratchet")
	s.ratchet.counter = d.U32("counter")
	pub := d.Array32("public key")
	expanded := d.Array64("private key")
	defer clear(expanded[:])
	if err := d.Finish(); err != nil {
		s.ratchet.clear()
		return nil, fmt.Errorf("megolm: import libolm outbound group session: %w (%w)", ErrPickleFormat, err)
	}
	s.signingKey = keys.NewEd25519SecretKeyFromExpanded(&expanded)
	if s.signingKey.PublicKey().Array() != pub {
		s.ratchet.clear()
		return nil, fmt.Errorf("megolm: import libolm outbound group session: %w: public key does not match the private key", ErrPickleFormat)
	}
	return s, nil
}

// LibolmPickle returns the session in libolm's pickle format (version 2),
// encrypted under key. See [OutboundGroupSession.LibolmPickle].
func (s *InboundGroupSession) LibolmPickle(key []byte) string {
	var e libolmpickle.Encoder
	e.U32(libolmInboundVersion)
	e.Bytes(s.initial.data[:])
	e.U32(s.initial.counter)
	e.Bytes(s.latest.data[:])
	e.U32(s.latest.counter)
	pub := s.signingKey.Array()
	e.Bytes(pub[:])
	e.Bool(s.verified)
	raw := e.Result()
	defer clear(raw)
	return libolmpickle.Seal(key, raw)
}

// ImportLibolmInboundGroupSession reads an inbound group session pickled by
// libolm (version 1 or 2) under key. Version 1 predates the verified flag;
// libolm reads such sessions as verified, and so does this. A wrong key or
// altered pickle is ErrPickleAuth.
func ImportLibolmInboundGroupSession(pickle string, key []byte) (*InboundGroupSession, error) {
	raw, err := openLibolmPickle(pickle, key)
	if err != nil {
		return nil, fmt.Errorf("megolm: import libolm inbound group session: %w", err)
	}
	defer clear(raw)
	d, version, err := versionedDecoder(raw, "libolm", libolmInboundVersionOld, libolmInboundVersion)
	if err != nil {
		return nil, fmt.Errorf("megolm: import libolm inbound group session: %w", err)
	}
	s := &InboundGroupSession{}
	s.initial.data = d.Array128("initial ratchet")
	s.initial.counter = d.U32("initial counter")
	s.latest.data = d.Array128("latest ratchet")
	s.latest.counter = d.U32("latest counter")
	pub := d.Array32("signing key")
	s.signingKey, _ = keys.NewEd25519PublicKeyFromBytes(pub[:])
	s.verified = true
	if version == libolmInboundVersion {
		s.verified = d.Bool("verified")
	}
	if err := d.Finish(); err != nil {
		s.initial.clear()
		s.latest.clear()
		return nil, fmt.Errorf("megolm: import libolm inbound group session: %w (%w)", ErrPickleFormat, err)
	}
	// libolm orders indices modulo 2^31, so after a wrap its latest ratchet
	// can sit below the initial one as plain integers. The latest ratchet
	// is only a shortcut; restart it from the initial one.
	if s.latest.counter < s.initial.counter {
		s.latest = s.initial
	}
	return s, nil
}

// openLibolmPickle opens libolm's envelope, mapping its errors to this
// package's.
func openLibolmPickle(pickle string, key []byte) ([]byte, error) {
	raw, err := libolmpickle.Open(key, pickle)
	switch {
	case errors.Is(err, libolmpickle.ErrBadMAC):
		return nil, ErrPickleAuth
	case err != nil:
		return nil, fmt.Errorf("%w (%w)", ErrPickleFormat, err)
	}
	return raw, nil
}
