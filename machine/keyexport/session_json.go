package keyexport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/xolm/xolm/internal/keys"
)

// wireSession is the JSON form of an ExportedSession.
//
// The spec's ExportedSessionData has no field for MSC3061's shared-history
// flag. matrix-rust-sdk (and so Element, which exports through it) writes it
// as "m.shared_history" and reads that or "org.matrix.msc3061.shared_history";
// the m.room_key event calls it "shared_history" since spec v1.19. All three
// are read; "m.shared_history" is written, when true, because it is what the
// clients in use read.
type wireSession struct {
	Algorithm         string            `json:"algorithm"`
	RoomID            string            `json:"room_id"`
	SenderKey         string            `json:"sender_key"`
	SessionID         string            `json:"session_id"`
	SessionKey        SessionKey        `json:"session_key"`
	SenderClaimedKeys map[string]string `json:"sender_claimed_keys"`
	ForwardingChain   []string          `json:"forwarding_curve25519_key_chain"`
	SharedHistory     bool              `json:"m.shared_history,omitempty"`
	// Read only.
	MSC3061SharedHistory bool `json:"org.matrix.msc3061.shared_history,omitempty"`
	SpecSharedHistory    bool `json:"shared_history,omitempty"`
}

// MarshalJSON implements json.Marshaler. The session must be valid (see
// [ExportedSession.Validate]). "sender_claimed_keys" and
// "forwarding_curve25519_key_chain", which the spec requires, are always
// written, empty when there is nothing to put in them.
func (s ExportedSession) MarshalJSON() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	w := wireSession{
		Algorithm:         s.Algorithm,
		RoomID:            s.RoomID,
		SenderKey:         s.SenderKey.String(),
		SessionID:         s.SessionID,
		SessionKey:        s.SessionKey,
		SenderClaimedKeys: map[string]string{},
		ForwardingChain:   make([]string, 0, len(s.ForwardingCurve25519KeyChain)),
		SharedHistory:     s.SharedHistory,
	}
	if !s.SenderClaimedKeys.Ed25519.IsZero() {
		w.SenderClaimedKeys["ed25519"] = s.SenderClaimedKeys.Ed25519.String()
	}
	for _, k := range s.ForwardingCurve25519KeyChain {
		w.ForwardingChain = append(w.ForwardingChain, k.String())
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler and validates the session (see
// [ExportedSession.Validate]); unknown fields are ignored. As matrix-rust-sdk
// does, a missing "sender_claimed_keys" or "forwarding_curve25519_key_chain"
// reads as empty, although the spec lists both as required: no client needs
// them to import a session.
func (s *ExportedSession) UnmarshalJSON(data []byte) error {
	var w wireSession
	if err := json.Unmarshal(data, &w); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return &SessionError{Field: typeErr.Field, Err: fmt.Errorf("a JSON %s where %s is expected", typeErr.Value, typeErr.Type)}
		case errors.Is(err, errSessionKeyEncoding):
			return &SessionError{Field: "session_key", Err: err}
		}
		return &SessionError{Err: err}
	}
	out := ExportedSession{
		Algorithm:     w.Algorithm,
		RoomID:        w.RoomID,
		SessionID:     w.SessionID,
		SessionKey:    w.SessionKey,
		SharedHistory: w.SharedHistory || w.MSC3061SharedHistory || w.SpecSharedHistory,
	}
	var err error
	if w.SenderKey != "" {
		if out.SenderKey, err = keys.ParseCurve25519PublicKey(w.SenderKey); err != nil {
			return &SessionError{Field: "sender_key", Err: err}
		}
	}
	if ed, ok := w.SenderClaimedKeys["ed25519"]; ok {
		if out.SenderClaimedKeys.Ed25519, err = keys.ParseEd25519PublicKey(ed); err != nil {
			return &SessionError{Field: "sender_claimed_keys.ed25519", Err: err}
		}
	}
	for i, k := range w.ForwardingChain {
		pub, err := keys.ParseCurve25519PublicKey(k)
		if err != nil {
			return &SessionError{Field: fmt.Sprintf("forwarding_curve25519_key_chain[%d]", i), Err: err}
		}
		out.ForwardingCurve25519KeyChain = append(out.ForwardingCurve25519KeyChain, pub)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

// MarshalSessions returns the JSON array of sessions that [Encrypt] takes.
// Every session must be valid; the first that is not is reported as a
// *SessionError with its index.
func MarshalSessions(sessions []ExportedSession) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range sessions {
		b, err := sessions[i].MarshalJSON()
		if err != nil {
			return nil, withIndex(err, i)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// UnmarshalSessions parses the JSON array of sessions that [Decrypt]
// returns. It is all or nothing, as matrix-rust-sdk's reader is: an array
// entry that is not a valid session (see [ExportedSession.Validate]) fails
// the whole list with a *SessionError giving its index. Input over
// MaxFileSize or not valid UTF-8 is refused.
func UnmarshalSessions(data []byte) ([]ExportedSession, error) {
	if n := uint64(len(data)); n > MaxFileSize {
		return nil, fmt.Errorf("keyexport: sessions: %w", &LimitError{Limit: "size", Value: n, Max: MaxFileSize})
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("keyexport: sessions: %w: not valid UTF-8", ErrInvalidFile)
	}
	var entries []json.RawMessage
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '[' {
		return nil, fmt.Errorf("keyexport: sessions: %w: not a JSON array", ErrInvalidFile)
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("keyexport: sessions: %w: not a JSON array: %v", ErrInvalidFile, err)
	}
	sessions := make([]ExportedSession, len(entries))
	for i, e := range entries {
		if err := sessions[i].UnmarshalJSON(e); err != nil {
			return nil, withIndex(err, i)
		}
	}
	return sessions, nil
}

func withIndex(err error, i int) error {
	if se, ok := errors.AsType[*SessionError](err); ok {
		indexed := *se
		indexed.Index = i
		return &indexed
	}
	return err
}
