package olm

import (
	"errors"
	"fmt"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/wire"
)

// ErrBadMAC is the one error for a message that failed authentication. It is
// returned whatever the reason: a forged or altered message, a wrong session, a
// replayed message whose key has been used and erased, or a message older than
// the receiving chain whose key was never kept. Nothing more specific is said
// before a MAC has verified.
var ErrBadMAC = errors.New("olm: message authentication failed")

// ErrMissingOneTimeKey reports a pre-key message for a one-time key the
// account does not hold: it never had it, or it was used up already. A session
// that the caller already has for this message (see
// [Session.MatchesInboundSession]) should be tried first.
var ErrMissingOneTimeKey = errors.New("olm: unknown one-time key")

// ErrMismatchedIdentityKey reports a pre-key message whose sender identity key
// is not the one the caller expected.
var ErrMismatchedIdentityKey = errors.New("olm: identity key does not match the pre-key message")

// ErrDecode is matched (with errors.Is) by every error about a message that is
// not well formed: truncated, a wrong version byte, missing or duplicated
// fields, keys of the wrong length, an unknown message type.
var ErrDecode = wire.ErrDecode

// ErrNonContributory is matched by the error returned when a Diffie-Hellman
// exchange gives all zeros because the peer's key is a low-order point. Such
// keys are never accepted, as in vodozemac.
var ErrNonContributory = keys.ErrNonContributory

// ErrKeyIDsExhausted reports that the account's 32-bit key ID counter has run
// out. IDs are never reused, so no further one-time or fallback keys can be
// made for this account.
var ErrKeyIDsExhausted = errors.New("olm: one-time key ids exhausted")

// ErrPickleAuth reports a pickle that failed authentication: a wrong key,
// wrong associated data, or altered bytes. Nothing more specific is said.
var ErrPickleAuth = errors.New("olm: pickle authentication failed")

// ErrPickleFormat reports a pickle that authenticated but does not decode:
// truncated, trailing bytes, out-of-range counts or inconsistent keys.
var ErrPickleFormat = errors.New("olm: invalid pickle")

// MessageGapError reports a message that would need more ratchet steps than
// [MaxMessageGap] to reach. The session is unchanged.
type MessageGapError struct {
	Gap uint32 // steps from the receiving chain's position to the message
	Max uint32 // the limit, MaxMessageGap
}

func (e *MessageGapError) Error() string {
	return fmt.Sprintf("olm: message is %d steps ahead of its chain, more than the limit of %d", e.Gap, e.Max)
}

// PickleVersionError reports a pickle whose format version this package
// cannot read. For libolm account pickles, version 1 held a truncated Ed25519
// key and was rejected by libolm too (OLM_BAD_LEGACY_ACCOUNT_PICKLE): keys
// from it must be considered compromised.
type PickleVersionError struct {
	Object  string // "account" or "session"
	Format  string // "xolm" or "libolm"
	Version uint32
}

func (e *PickleVersionError) Error() string {
	if e.Format == "libolm" && e.Object == "account" && e.Version == 1 {
		return "olm: legacy libolm account pickle (version 1) is not supported: its ed25519 key is unsafe"
	}
	return fmt.Sprintf("olm: unsupported %s %s pickle version %#x", e.Format, e.Object, e.Version)
}

// decodeError wraps a message-format problem found by this package rather
// than by the wire codec, so that it matches ErrDecode.
func decodeError(what, format string, args ...any) error {
	return &wire.DecodeError{Message: what, Reason: fmt.Sprintf(format, args...)}
}
