package megolm

import (
	"fmt"
	"log/slog"
	"strconv"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/wire"
)

// InboundGroupSession is the receiving side of a Megolm session. It holds two
// ratchets of the same chain: the initial one, at the first index it can
// decrypt, and the latest one, at the highest index decrypted so far, so that
// decrypting in order costs one ratchet step per message however far the
// session has come. Messages below the latest index are decrypted from the
// initial ratchet (at most about a thousand HMACs; see maxAdvanceHMACs).
//
// Only a successful Decrypt changes a session: it moves the latest ratchet
// forward to the message's index when that is beyond it, and marks an imported
// session verified. A failed Decrypt leaves it byte-identical, and pickles
// carry both ratchets.
//
// Indices are ordered as plain unsigned integers, as in vodozemac (libolm
// compares them modulo 2^31); an outbound session never wraps past 2^32-1.
//
// An InboundGroupSession is not safe for concurrent use.
type InboundGroupSession struct {
	initial    ratchet
	latest     ratchet
	signingKey keys.Ed25519PublicKey

	// verified records that the ratchet is known to come from the holder of
	// signingKey: the session was created from a signed session key, or a
	// message signed by signingKey decrypted with it. Exported keys are
	// unsigned, so imports start unverified (libolm's behaviour).
	verified bool
}

// NewInboundGroupSession creates a session from a signed session-sharing key
// (version 2, 229 bytes; the session_key of m.room_key after base64 decoding).
// The signature is verified: a bad one is ErrBadSignature, a malformed key
// ErrInvalidSessionKey.
func NewInboundGroupSession(sessionKey []byte) (*InboundGroupSession, error) {
	r, pub, err := decodeSessionKey(sessionKey)
	if err != nil {
		return nil, fmt.Errorf("megolm: new inbound group session: %w", err)
	}
	return &InboundGroupSession{initial: r, latest: r, signingKey: pub, verified: true}, nil
}

// ImportInboundGroupSession creates a session from an exported key (version
// 1, 165 bytes), as found in m.forwarded_room_key, key backups and key export
// files. The key is unsigned, so the session is not verified until a message
// signed by its signing key decrypts with it (see
// [InboundGroupSession.SigningKeyVerified]).
func ImportInboundGroupSession(exported []byte) (*InboundGroupSession, error) {
	r, pub, err := decodeExportedKey(exported)
	if err != nil {
		return nil, fmt.Errorf("megolm: import inbound group session: %w", err)
	}
	return &InboundGroupSession{initial: r, latest: r, signingKey: pub}, nil
}

// ID returns the session ID: the unpadded base64 of the session's Ed25519
// public key.
func (s *InboundGroupSession) ID() string { return s.signingKey.String() }

// SigningKey returns the session's Ed25519 public key, whose base64 form is
// the session ID.
func (s *InboundGroupSession) SigningKey() Ed25519PublicKey { return s.signingKey }

// FirstKnownIndex returns the lowest message index the session can decrypt.
func (s *InboundGroupSession) FirstKnownIndex() uint32 { return s.initial.counter }

// SigningKeyVerified reports whether the ratchet is known to belong to the
// signing key: true for sessions created from a signed session key, and for
// imported ones once a message has decrypted with them.
func (s *InboundGroupSession) SigningKeyVerified() bool { return s.verified }

// Decrypt authenticates and decrypts a raw Megolm message (the ciphertext of
// an m.room.encrypted event after base64 decoding) and returns the plaintext
// and the message's index.
//
// The checks run in this order: decoding (ErrInvalidMessage), the Ed25519
// signature, the index (*UnknownMessageIndexError when it is below
// FirstKnownIndex), the MAC, then AES-CBC decryption with strict padding. A
// bad signature and a bad MAC are both ErrBadMAC. On any error the session is
// unchanged.
//
// Decrypt does not detect replays: the same message decrypts again. Record
// (session ID, index) against the event that carried it.
func (s *InboundGroupSession) Decrypt(message []byte) (plaintext []byte, index uint32, err error) {
	m, err := parseMessage(message)
	if err != nil {
		return nil, 0, fmt.Errorf("megolm: decrypt: %w", err)
	}
	if !verifySignature(s.signingKey, m) {
		return nil, 0, ErrBadMAC
	}
	r, err := s.ratchetAt(m.Index)
	if err != nil {
		return nil, 0, err
	}
	plaintext, err = openMessage(&r, m)
	if err != nil {
		r.clear()
		return nil, 0, err
	}
	// Success: only now may state change.
	if m.Index > s.latest.counter {
		s.latest = r
	}
	r.clear()
	s.verified = true
	return plaintext, m.Index, nil
}

// ratchetAt returns a copy of the ratchet advanced to index, starting from the
// latest ratchet when index is at or beyond it, else from the initial one. It
// does not change the session.
func (s *InboundGroupSession) ratchetAt(index uint32) (ratchet, error) {
	if index < s.initial.counter {
		return ratchet{}, &UnknownMessageIndexError{FirstKnown: s.initial.counter, Index: index}
	}
	r := s.initial
	if index >= s.latest.counter {
		r = s.latest
	}
	r.advanceTo(index)
	return r, nil
}

// Export returns the exported key (version 1, 165 bytes, unsigned) at index,
// from which another session can decrypt every message from index on. An index
// below FirstKnownIndex is an *UnknownMessageIndexError. The bytes are secret
// and the caller's to wipe.
func (s *InboundGroupSession) Export(index uint32) ([]byte, error) {
	r, err := s.ratchetAt(index)
	if err != nil {
		return nil, fmt.Errorf("megolm: export: %w", err)
	}
	defer r.clear()
	return encodeExportedKey(&r, s.signingKey), nil
}

// ExportAtFirstKnownIndex returns the exported key at FirstKnownIndex: the
// most this session can share. The bytes are secret and the caller's to wipe.
func (s *InboundGroupSession) ExportAtFirstKnownIndex() []byte {
	return encodeExportedKey(&s.initial, s.signingKey)
}

// Clone returns an independent copy, so that a caller can decrypt on the copy
// and keep the original if persisting the result fails.
func (s *InboundGroupSession) Clone() *InboundGroupSession {
	c := *s
	return &c
}

// parseMessage decodes a message. Any failure is an ErrInvalidMessage that
// also wraps the decoder's *wire.DecodeError.
func parseMessage(b []byte) (*wire.MegolmMessage, error) {
	m, err := wire.DecodeMegolmMessage(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", ErrInvalidMessage, err)
	}
	return m, nil
}

// verifySignature checks the message's Ed25519 signature. This comes first,
// before any secret is touched: a message not signed by the session's owner is
// rejected without looking at its index.
func verifySignature(signer keys.Ed25519PublicKey, m *wire.MegolmMessage) bool {
	return signer.Verify(m.SignatureCovered(), m.Signature[:])
}

// openMessage checks the MAC of m under the keys of r, which must already be at
// m's index, and only then decrypts and unpads. A MAC failure is ErrBadMAC; a
// padding failure after a good MAC (a sender bug, not an attack) is reported
// as such.
func openMessage(r *ratchet, m *wire.MegolmMessage) ([]byte, error) {
	k := r.keys()
	defer k.Clear()
	if !k.VerifyTruncatedMAC(m.MACCovered(), m.MAC[:]) {
		return nil, ErrBadMAC
	}
	plaintext, err := k.Decrypt(m.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("megolm: decrypt: %w", err)
	}
	return plaintext, nil
}

// String returns the session's ID, first known index and verified flag, never
// its ratchets. Every formatting path prints the same; see
// [OutboundGroupSession.String].
func (s InboundGroupSession) String() string {
	return "megolm.InboundGroupSession{id:" + s.ID() +
		", first_known_index:" + strconv.FormatUint(uint64(s.initial.counter), 10) +
		", verified:" + strconv.FormatBool(s.verified) + ", secrets:redacted}"
}

// GoString implements fmt.GoStringer with the redacted form.
func (s InboundGroupSession) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb reaches the secrets.
func (s InboundGroupSession) Format(f fmt.State, _ rune) { f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s InboundGroupSession) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.ID()),
		slog.Uint64("first_known_index", uint64(s.initial.counter)),
		slog.Bool("verified", s.verified))
}

var (
	_ fmt.Formatter  = InboundGroupSession{}
	_ fmt.GoStringer = InboundGroupSession{}
	_ slog.LogValuer = InboundGroupSession{}
)
