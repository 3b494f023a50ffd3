package keyexport

import (
	"errors"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/megolm"
)

// MegolmAlgorithm is the room key algorithm of every exported session.
const MegolmAlgorithm = "m.megolm.v1.aes-sha2"

// ExportedSession is one Megolm session in a key export, the ExportedSessionData
// of the spec ("Key export format"). It marshals to and from that JSON form.
type ExportedSession struct {
	Algorithm         string                   // always MegolmAlgorithm
	RoomID            string                   // the room the session is used in
	SessionID         string                   // the session's ID: its signing key in base64
	SenderKey         keys.Curve25519PublicKey // Curve25519 key of the device that created the session
	SenderClaimedKeys SenderClaimedKeys        // keys that device claimed in the m.room_key event
	// ForwardingCurve25519KeyChain lists the devices that forwarded the key
	// on, through m.forwarded_room_key; empty if it came directly.
	ForwardingCurve25519KeyChain []keys.Curve25519PublicKey
	SessionKey                   SessionKey // the session at its first known index
	// SharedHistory is true when the creator of the session marked it as
	// shareable with users invited later (MSC3061).
	SharedHistory bool
}

// SenderClaimedKeys are the keys the creator of a session claimed to own.
type SenderClaimedKeys struct {
	Ed25519 keys.Ed25519PublicKey // zero when the export carries none
}

// SessionKey is a Megolm session in the exported format (version byte 0x01,
// as megolm.InboundGroupSession.Export returns it). It is secret: every
// way of printing it shows a placeholder, and its JSON form is unpadded base64.
// The bytes are the caller's to wipe.
type SessionKey []byte

const redactedSessionKey = "SessionKey{redacted}"

func (SessionKey) String() string   { return redactedSessionKey }
func (SessionKey) GoString() string { return redactedSessionKey }

// Format implements fmt.Formatter so that no verb (%x included) reaches the bytes.
func (SessionKey) Format(f fmt.State, _ rune) { f.Write([]byte(redactedSessionKey)) }

// LogValue implements slog.LogValuer.
func (SessionKey) LogValue() slog.Value { return slog.StringValue(redactedSessionKey) }

// MarshalText implements encoding.TextMarshaler (unpadded base64).
func (k SessionKey) MarshalText() ([]byte, error) { return b64.AppendEncode(nil, k), nil }

var errSessionKeyEncoding = errors.New("not base64")

// UnmarshalText implements encoding.TextUnmarshaler; padding is accepted.
func (k *SessionKey) UnmarshalText(text []byte) error {
	b, err := b64.DecodeBytes(text)
	if err != nil {
		return errSessionKeyEncoding
	}
	*k = b
	return nil
}

var (
	_ fmt.Formatter  = SessionKey(nil)
	_ fmt.GoStringer = SessionKey(nil)
	_ slog.LogValuer = SessionKey(nil)
)

// ErrInvalidSession is matched by every *SessionError.
var ErrInvalidSession = errors.New("keyexport: invalid exported session")

// SessionError reports an exported session that is malformed or
// inconsistent. It matches ErrInvalidSession.
type SessionError struct {
	Index int    // the session's position in its list (0 from Validate and the JSON methods)
	Field string // the JSON field at fault, or "" for the session as a whole
	Err   error  // what is wrong
}

func (e *SessionError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("keyexport: exported session %d: %v", e.Index, e.Err)
	}
	return fmt.Sprintf("keyexport: exported session %d: %s: %v", e.Index, e.Field, e.Err)
}

// Is makes errors.Is(err, ErrInvalidSession) true.
func (e *SessionError) Is(target error) bool { return target == ErrInvalidSession }

// Unwrap returns the underlying error.
func (e *SessionError) Unwrap() error { return e.Err }

// Validate checks that s can be imported: the algorithm is MegolmAlgorithm,
// the room ID, session ID, sender key and session key are present, and the
// session key is an exported Megolm session whose ID is s.SessionID.
func (s *ExportedSession) Validate() error {
	invalid := func(field, format string, args ...any) error {
		return &SessionError{Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case s.Algorithm != MegolmAlgorithm:
		return invalid("algorithm", "%q is not %q", shorten(s.Algorithm), MegolmAlgorithm)
	case s.RoomID == "":
		return invalid("room_id", "missing")
	case s.SessionID == "":
		return invalid("session_id", "missing")
	case s.SenderKey.IsZero():
		return invalid("sender_key", "missing")
	case len(s.SessionKey) == 0:
		return invalid("session_key", "missing")
	}
	session, err := megolm.ImportInboundGroupSession(s.SessionKey)
	if err != nil {
		return &SessionError{Field: "session_key", Err: err}
	}
	if id := session.ID(); id != s.SessionID {
		return invalid("session_id", "%q does not match the session key's %q", shorten(s.SessionID), id)
	}
	return nil
}

// shorten keeps error messages short when they quote file contents.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
