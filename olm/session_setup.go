package olm

import (
	"fmt"
	"io"

	"github.com/xolm/xolm/internal/keys"
)

// outboundRandomSize is what NewOutboundSession reads: the base key, then the
// first ratchet key, in libolm's order.
const outboundRandomSize = 64

// NewOutboundSession starts a session with the device whose identity key and
// claimed one-time (or fallback) key are given. It reads exactly 64 bytes from
// rand: bytes 0–31 are the private base key and bytes 32–63 the first ratchet
// key, as libolm reads them. The account is not changed.
//
// The session sends pre-key messages until it decrypts a reply.
func (a *Account) NewOutboundSession(rand io.Reader, theirIdentityKey, theirOneTimeKey Curve25519PublicKey) (*Session, error) {
	var b [outboundRandomSize]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return nil, fmt.Errorf("olm: new outbound session: reading randomness: %w", err)
	}
	base := keys.NewCurve25519SecretKeyFromArray((*[32]byte)(b[:32]))
	ratchetKey := keys.NewCurve25519SecretKeyFromArray((*[32]byte)(b[32:]))
	clear(b[:])
	defer base.Clear()

	// S = DH(I_A, E_B) ‖ DH(E_A, I_B) ‖ DH(E_A, E_B)  (PROTOCOL.md §2.4)
	secret, err := tripleDH(
		dh{a.identity, theirOneTimeKey},
		dh{base, theirIdentityKey},
		dh{base, theirOneTimeKey},
	)
	if err != nil {
		return nil, fmt.Errorf("olm: new outbound session: %w", err)
	}
	s := &Session{
		aliceIdentity: a.identity.PublicKey(),
		aliceBase:     base.PublicKey(),
		bobOneTime:    theirOneTimeKey,
		ratchet:       initAsAlice(secret[:], ratchetKey),
	}
	s.setID()
	clear(secret[:])
	return s, nil
}

// NewInboundSession creates the session that a peer started with msg, and
// returns it with the plaintext of msg.
//
// theirIdentityKey is the identity key the caller expects the sender to have
// (from the Matrix event's sender_key); if it is nil, the key in the message
// is taken. The one-time key the message names is looked up among the
// account's one-time keys, then the current and previous fallback keys.
//
// As in vodozemac, the message is decrypted before anything changes: only if
// it authenticates and decrypts is its one-time key removed from the account
// (fallback keys are kept). On any error the account is unchanged. Errors:
// [ErrMismatchedIdentityKey], [ErrMissingOneTimeKey], [ErrBadMAC],
// *[MessageGapError], [ErrNonContributory].
func (a *Account) NewInboundSession(theirIdentityKey *Curve25519PublicKey, msg *PreKeyMessage) (*Session, []byte, error) {
	identity := msg.IdentityKey()
	if theirIdentityKey != nil && *theirIdentityKey != identity {
		return nil, nil, ErrMismatchedIdentityKey
	}
	oneTime, pos := a.findKey(msg.OneTimeKey())
	if oneTime == nil {
		return nil, nil, ErrMissingOneTimeKey
	}
	base := msg.BaseKey()

	// S = DH(E_B, I_A) ‖ DH(I_B, E_A) ‖ DH(E_B, E_A): the same secret as the
	// initiator's, computed from the other halves.
	secret, err := tripleDH(
		dh{oneTime.key, identity},
		dh{a.identity, base},
		dh{oneTime.key, base},
	)
	if err != nil {
		return nil, nil, fmt.Errorf("olm: new inbound session: %w", err)
	}
	s := &Session{
		aliceIdentity: identity,
		aliceBase:     base,
		bobOneTime:    msg.OneTimeKey(),
		ratchet:       initAsBob(secret[:], msg.Message().RatchetKey()),
	}
	s.setID()
	clear(secret[:])
	plaintext, err := s.decrypt(msg.inner)
	if err != nil {
		return nil, nil, err
	}
	if pos >= 0 {
		a.removeOneTimeKey(pos)
	}
	return s, plaintext, nil
}

// dh names one Diffie-Hellman exchange of the triple.
type dh struct {
	ours   *keys.Curve25519SecretKey
	theirs Curve25519PublicKey
}

// tripleDH concatenates three shared secrets.
func tripleDH(exchanges ...dh) ([96]byte, error) {
	var out [96]byte
	for i, e := range exchanges {
		s, err := e.ours.SharedSecret(e.theirs)
		if err != nil {
			clear(out[:])
			return out, err
		}
		copy(out[32*i:], s[:])
		clear(s[:])
	}
	return out, nil
}
