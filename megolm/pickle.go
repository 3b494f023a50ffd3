package megolm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/libolmpickle"
	"github.com/xolm/xolm/internal/pickle"
)

// xolm's own pickles seal a raw big-endian encoding with the internal/pickle
// AEAD envelope (KindOutboundGroup, KindInboundGroup); the caller's associated
// data (for the store: table, row key and schema version) is bound to it. The
// encoding starts with its own format version:
//
//	outbound v1: u32 1 ‖ u32 counter ‖ R(128) ‖ u8 key form ‖ key
//	             (form 0: Ed25519 seed(32) ‖ public key(32);
//	              form 1: libolm's expanded private key(64), for imported sessions)
//	inbound v1:  u32 1 ‖ u32 initial counter ‖ initial R(128) ‖
//	             u32 latest counter ‖ latest R(128) ‖ public key(32) ‖ u8 verified
const (
	outboundPickleVersion = 1
	inboundPickleVersion  = 1

	keyFormSeed     = 0
	keyFormExpanded = 1
)

// Pickle returns the session sealed under key, binding ad.
func (s *OutboundGroupSession) Pickle(key *[32]byte, ad []byte) []byte {
	raw := s.marshal()
	defer clear(raw)
	return pickle.Seal(key, pickle.KindOutboundGroup, ad, raw)
}

// UnpickleOutboundGroupSession opens a pickle made by
// [OutboundGroupSession.Pickle] with the same key and ad. A wrong key, wrong ad
// or altered bytes give ErrPickleAuth.
func UnpickleOutboundGroupSession(b []byte, key *[32]byte, ad []byte) (*OutboundGroupSession, error) {
	raw, err := openPickle(b, key, pickle.KindOutboundGroup, ad)
	if err != nil {
		return nil, fmt.Errorf("megolm: unpickle outbound group session: %w", err)
	}
	defer clear(raw)
	s, err := unmarshalOutbound(raw)
	if err != nil {
		return nil, fmt.Errorf("megolm: unpickle outbound group session: %w", err)
	}
	return s, nil
}

// Pickle returns the session sealed under key, binding ad.
func (s *InboundGroupSession) Pickle(key *[32]byte, ad []byte) []byte {
	raw := s.marshal()
	defer clear(raw)
	return pickle.Seal(key, pickle.KindInboundGroup, ad, raw)
}

// UnpickleInboundGroupSession opens a pickle made by
// [InboundGroupSession.Pickle] with the same key and ad. A wrong key, wrong ad
// or altered bytes give ErrPickleAuth.
func UnpickleInboundGroupSession(b []byte, key *[32]byte, ad []byte) (*InboundGroupSession, error) {
	raw, err := openPickle(b, key, pickle.KindInboundGroup, ad)
	if err != nil {
		return nil, fmt.Errorf("megolm: unpickle inbound group session: %w", err)
	}
	defer clear(raw)
	s, err := unmarshalInbound(raw)
	if err != nil {
		return nil, fmt.Errorf("megolm: unpickle inbound group session: %w", err)
	}
	return s, nil
}

// openPickle opens the envelope, mapping its errors to this package's.
func openPickle(b []byte, key *[32]byte, kind pickle.Kind, ad []byte) ([]byte, error) {
	raw, err := pickle.Open(key, kind, ad, b)
	switch {
	case errors.Is(err, pickle.ErrAuth):
		return nil, ErrPickleAuth
	case err != nil:
		return nil, fmt.Errorf("%w (%w)", ErrPickleFormat, err)
	}
	return raw, nil
}

// versionedDecoder reads the leading u32 format version of raw and returns a
// decoder positioned after it, or a *PickleVersionError naming the version
// found when it is not one of want.
func versionedDecoder(raw []byte, format string, want ...uint32) (*libolmpickle.Decoder, uint32, error) {
	if len(raw) < 4 {
		return nil, 0, fmt.Errorf("%w: %d bytes is too short", ErrPickleFormat, len(raw))
	}
	d := libolmpickle.NewDecoder(raw)
	v := d.U32("version")
	if !slices.Contains(want, v) {
		return nil, v, &PickleVersionError{Format: format, Version: v}
	}
	return d, v, nil
}

// marshal encodes the session in the outbound v1 layout. The result holds
// secrets; the caller clears it.
func (s *OutboundGroupSession) marshal() []byte {
	var e libolmpickle.Encoder
	e.U32(outboundPickleVersion)
	e.U32(s.ratchet.counter)
	e.Bytes(s.ratchet.data[:])
	pub := s.signingKey.PublicKey().Array()
	if seed, ok := s.signingKey.Seed(); ok {
		e.U8(keyFormSeed)
		e.Bytes(seed[:])
		e.Bytes(pub[:])
		clear(seed[:])
	} else {
		expanded := s.signingKey.Expanded()
		e.U8(keyFormExpanded)
		e.Bytes(expanded[:])
		clear(expanded[:])
	}
	return e.Result()
}

func unmarshalOutbound(raw []byte) (*OutboundGroupSession, error) {
	d, _, err := versionedDecoder(raw, "xolm", outboundPickleVersion)
	if err != nil {
		return nil, err
	}
	s := &OutboundGroupSession{}
	s.ratchet.counter = d.U32("counter")
	s.ratchet.data = d.Array128("ratchet")
	switch form := d.U8("key form"); form {
	case keyFormSeed:
		seed, pub := d.Array32("seed"), d.Array32("public key")
		if k, err := keys.NewEd25519SecretKeyFromSeedAndPublic(&seed, &pub); err != nil {
			d.Fail(fmt.Errorf("%w: %w", libolmpickle.ErrFormat, err))
		} else {
			s.signingKey = k
		}
		clear(seed[:])
	case keyFormExpanded:
		expanded := d.Array64("expanded key")
		s.signingKey = keys.NewEd25519SecretKeyFromExpanded(&expanded)
		clear(expanded[:])
	default:
		d.Fail(fmt.Errorf("unknown key form %d", form))
	}
	if err := d.Finish(); err != nil {
		s.ratchet.clear()
		return nil, fmt.Errorf("%w (%w)", ErrPickleFormat, err)
	}
	return s, nil
}

// inboundPickleLen is the length of the inbound v1 layout.
const inboundPickleLen = 4 + 4 + ratchetSize + 4 + ratchetSize + 32 + 1

// marshal encodes the session in the inbound v1 layout. The result holds
// secrets; the caller clears it. It is built in one buffer of its final
// size: growing one would leave partial copies of the ratchets behind.
func (s *InboundGroupSession) marshal() []byte {
	b := make([]byte, 0, inboundPickleLen)
	b = binary.BigEndian.AppendUint32(b, inboundPickleVersion)
	b = binary.BigEndian.AppendUint32(b, s.initial.counter)
	b = append(b, s.initial.data[:]...)
	b = binary.BigEndian.AppendUint32(b, s.latest.counter)
	b = append(b, s.latest.data[:]...)
	pub := s.signingKey.Array()
	b = append(b, pub[:]...)
	if s.verified {
		return append(b, 1)
	}
	return append(b, 0)
}

func unmarshalInbound(raw []byte) (*InboundGroupSession, error) {
	d, _, err := versionedDecoder(raw, "xolm", inboundPickleVersion)
	if err != nil {
		return nil, err
	}
	s := &InboundGroupSession{}
	s.initial.counter = d.U32("initial counter")
	s.initial.data = d.Array128("initial ratchet")
	s.latest.counter = d.U32("latest counter")
	s.latest.data = d.Array128("latest ratchet")
	pub := d.Array32("signing key")
	s.signingKey, _ = keys.NewEd25519PublicKeyFromBytes(pub[:])
	switch verified := d.U8("verified"); verified {
	case 0, 1:
		s.verified = verified == 1
	default:
		d.Fail(fmt.Errorf("verified flag is %d", verified))
	}
	if d.Finish() == nil && s.latest.counter < s.initial.counter {
		d.Fail(fmt.Errorf("latest index %d is below the first known index %d", s.latest.counter, s.initial.counter))
	}
	if err := d.Finish(); err != nil {
		s.initial.clear()
		s.latest.clear()
		return nil, fmt.Errorf("%w (%w)", ErrPickleFormat, err)
	}
	return s, nil
}
