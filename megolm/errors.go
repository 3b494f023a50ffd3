package megolm

import (
	"errors"
	"fmt"
)

// ErrBadMAC reports a message that failed authentication: its signature does
// not verify under the session's signing key, or its MAC does not match the
// ratchet at its index. The two are deliberately not told apart. The session is
// unchanged.
var ErrBadMAC = errors.New("megolm: message authentication failed")

// ErrBadSignature reports a session key (the signed sharing format of
// m.room_key) whose signature does not verify under the key it carries.
var ErrBadSignature = errors.New("megolm: invalid session key signature")

// ErrUnknownMessageIndex is matched, through errors.Is, by every
// *UnknownMessageIndexError: the message was encrypted at an index below the
// first one the inbound session knows. Callers branch on it to ask for the key
// again (an m.room_key_request or a backup).
var ErrUnknownMessageIndex = errors.New("megolm: unknown message index")

// UnknownMessageIndexError reports a message, or an export, asked for at an
// index below the session's first known index. It matches
// ErrUnknownMessageIndex.
type UnknownMessageIndexError struct {
	FirstKnown uint32 // the first index the session can decrypt
	Index      uint32 // the index asked for
}

func (e *UnknownMessageIndexError) Error() string {
	return fmt.Sprintf("megolm: unknown message index %d (the first known index is %d)", e.Index, e.FirstKnown)
}

// Is makes errors.Is(err, ErrUnknownMessageIndex) true.
func (e *UnknownMessageIndexError) Is(target error) bool { return target == ErrUnknownMessageIndex }

// ErrInvalidMessage reports bytes that are not a Megolm message: a wrong
// version, a truncated or malformed body, a missing field. It says nothing
// about authenticity; nothing was decrypted.
var ErrInvalidMessage = errors.New("megolm: invalid message")

// ErrInvalidSessionKey reports a session key or exported session key of the
// wrong length or version. The error text gives the reason.
var ErrInvalidSessionKey = errors.New("megolm: invalid session key")

// ErrSessionExhausted reports an outbound session whose message index reached
// 2^32-1. libolm would wrap round to 0, which receivers that compare indices as
// plain integers (vodozemac, xolm) cannot decrypt, so the last index is never
// used. Sessions are rotated long before (every 100 messages by default).
var ErrSessionExhausted = errors.New("megolm: outbound session has used every message index")

// ErrPickleAuth reports a pickle that failed authentication: a wrong key, wrong
// associated data, or altered bytes. Nothing more specific is said.
var ErrPickleAuth = errors.New("megolm: pickle authentication failed")

// ErrPickleFormat reports a pickle that authenticated but does not hold a
// valid session, or is not a pickle at all. *PickleVersionError matches it.
var ErrPickleFormat = errors.New("megolm: invalid pickle")

// PickleVersionError reports a pickle in a format version this package does
// not read. It matches ErrPickleFormat.
type PickleVersionError struct {
	Format  string // "xolm" or "libolm"
	Version uint32
}

func (e *PickleVersionError) Error() string {
	return fmt.Sprintf("megolm: unsupported %s pickle version %d", e.Format, e.Version)
}

// Is makes errors.Is(err, ErrPickleFormat) true.
func (e *PickleVersionError) Is(target error) bool { return target == ErrPickleFormat }
