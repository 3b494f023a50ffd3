package olm

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/xolm/xolm/internal/wire"
)

// Session is one Olm session with one peer device: the keys that set it up
// and its double ratchet. Create one with [Account.NewOutboundSession] or
// [Account.NewInboundSession], or restore one with [UnpickleSession] or
// [ImportLibolmSession].
//
// A Session is not safe for concurrent use. Every method either completes or
// leaves the session exactly as it was.
type Session struct {
	_ [0]func() // not comparable: holds secrets

	// The keys that set the session up, from the initiator's point of view.
	aliceIdentity Curve25519PublicKey
	aliceBase     Curve25519PublicKey
	bobOneTime    Curve25519PublicKey
	// id is the session ID, derived from the three keys above when the
	// session is made or decoded: callers ask for it often.
	id string

	// receivedMessage is set once a message from the peer has decrypted; until
	// then the session sends pre-key messages.
	receivedMessage bool

	ratchet ratchet
}

// ID returns the session ID: unpadded base64 of SHA-256 over the initiator's
// identity key, its base key and the responder's one-time key. Both ends of a
// session compute the same ID.
func (s *Session) ID() string { return s.id }

// setID derives the session ID from the setup keys.
func (s *Session) setID() { s.id = sessionID(s.aliceIdentity, s.aliceBase, s.bobOneTime) }

// HasReceivedMessage reports whether a message from the peer has decrypted
// in this session. Until one has, [Session.Encrypt] produces pre-key
// messages, so that the peer can create its side of the session from any of
// them.
func (s *Session) HasReceivedMessage() bool { return s.receivedMessage }

// Encrypt encrypts plaintext and returns the message type and the binary
// message body (callers base64 it for Matrix).
//
// It reads 32 bytes from rand only when it starts a new sending chain: for the
// first message after one from the peer has decrypted. Otherwise it reads
// nothing. The session is unchanged on error.
func (s *Session) Encrypt(rand io.Reader, plaintext []byte) (MessageType, []byte, error) {
	msg, err := s.ratchet.encrypt(rand, plaintext)
	if err != nil {
		return 0, nil, err
	}
	if s.receivedMessage {
		return MessageTypeNormal, msg, nil
	}
	ot, base, id := s.bobOneTime.Array(), s.aliceBase.Array(), s.aliceIdentity.Array()
	return MessageTypePreKey, wire.EncodePreKeyMessage(&ot, &base, &id, msg), nil
}

// Decrypt authenticates and decrypts a message body of the given type.
//
// The MAC is checked before anything is decrypted, and the ratchet is advanced
// on copies that replace the session's state only once the plaintext is
// obtained: after any error the session is byte-for-byte unchanged.
//
// A pre-key message must carry this session's setup keys (see
// [Session.MatchesInboundSession]); one that does not fails like a forgery.
//
// Errors: [ErrBadMAC] for anything that fails to authenticate, a replayed
// message included; *[MessageGapError] for a message too far ahead of its
// chain; errors matching [ErrDecode] for malformed bodies, and
// [ErrNonContributory] for a low-order ratchet key.
func (s *Session) Decrypt(msgType MessageType, body []byte) ([]byte, error) {
	var m *wire.OlmMessage
	var err error
	switch msgType {
	case MessageTypeNormal:
		m, err = wire.DecodeOlmMessage(body)
	case MessageTypePreKey:
		var pre *wire.PreKeyMessage
		if pre, err = wire.DecodePreKeyMessage(body); err == nil {
			m, err = wire.DecodeOlmMessage(pre.Message)
		}
		if err == nil && !s.setUpBy(pre) {
			return nil, ErrBadMAC
		}
	default:
		err = decodeError("olm message", "unknown message type %d", msgType)
	}
	if err != nil {
		return nil, fmt.Errorf("olm: decrypt: %w", err)
	}
	return s.decrypt(m)
}

func (s *Session) decrypt(m *wire.OlmMessage) ([]byte, error) {
	pt, u, err := s.ratchet.decrypt(m)
	if err != nil {
		return nil, err
	}
	s.ratchet.apply(u)
	s.receivedMessage = true
	return pt, nil
}

// MatchesInboundSession reports whether msg belongs to this session: whether
// its identity, base and one-time keys are the ones the session was set up
// with, which is the same as comparing msg.SessionID() with s.ID(). When
// theirIdentityKey is not nil it must be the session's initiator identity key
// too. Nothing is authenticated; use it to pick the session to decrypt a
// pre-key message with before creating a new one.
func (s *Session) MatchesInboundSession(theirIdentityKey *Curve25519PublicKey, msg *PreKeyMessage) bool {
	if theirIdentityKey != nil && *theirIdentityKey != s.aliceIdentity {
		return false
	}
	return msg.IdentityKey() == s.aliceIdentity && msg.BaseKey() == s.aliceBase && msg.OneTimeKey() == s.bobOneTime
}

// setUpBy reports whether a pre-key message carries this session's setup keys.
func (s *Session) setUpBy(m *wire.PreKeyMessage) bool {
	return m.IdentityKey == s.aliceIdentity.Array() && m.BaseKey == s.aliceBase.Array() && m.OneTimeKey == s.bobOneTime.Array()
}

// Clone returns an independent copy of the session. Decrypting with the
// copy does not affect the original, and the reverse.
func (s *Session) Clone() *Session {
	return &Session{
		aliceIdentity:   s.aliceIdentity,
		aliceBase:       s.aliceBase,
		bobOneTime:      s.bobOneTime,
		id:              s.id,
		receivedMessage: s.receivedMessage,
		ratchet:         s.ratchet.clone(),
	}
}

// String describes the session by its ID. No secret is printed.
func (s *Session) String() string {
	return "olm.Session{id:" + s.ID() + ", secrets:redacted}"
}

// GoString is String, so that %#v prints no secret either.
func (s *Session) GoString() string { return s.String() }

// Format prints String for every verb, %x included.
func (s *Session) Format(f fmt.State, _ rune) { f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer with the redacted description.
func (s *Session) LogValue() slog.Value { return slog.StringValue(s.String()) }

var (
	_ fmt.Formatter  = (*Session)(nil)
	_ fmt.GoStringer = (*Session)(nil)
	_ slog.LogValuer = (*Session)(nil)
)
