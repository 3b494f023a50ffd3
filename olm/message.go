package olm

import (
	"crypto/sha256"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/wire"
)

// MessageType says how to read an Olm message body. Matrix carries it next to
// the body as "type" in m.olm.v1.curve25519-aes-sha2 content.
type MessageType int

const (
	// MessageTypePreKey is a pre-key message: the session-setup keys around a
	// normal message. A session sends these until it has decrypted a message
	// from its peer.
	MessageTypePreKey MessageType = 0
	// MessageTypeNormal is a normal message of an established session.
	MessageTypeNormal MessageType = 1
)

// PreKeyMessage is a parsed pre-key (type 0) message: the sender's identity
// key, the base key it generated, the one-time key of ours it used, and the
// first normal message of the session.
type PreKeyMessage struct {
	raw   []byte
	outer *wire.PreKeyMessage
	inner *wire.OlmMessage
}

// ParsePreKeyMessage parses the binary body of a pre-key message (the bytes,
// not their base64). The inner message must parse too. Errors match
// [ErrDecode].
func ParsePreKeyMessage(body []byte) (*PreKeyMessage, error) {
	raw := append([]byte(nil), body...)
	outer, err := wire.DecodePreKeyMessage(raw)
	if err != nil {
		return nil, err
	}
	inner, err := wire.DecodeOlmMessage(outer.Message)
	if err != nil {
		return nil, err
	}
	return &PreKeyMessage{raw: raw, outer: outer, inner: inner}, nil
}

// SessionID returns the ID of the session this message belongs to, the same
// value as [Session.ID] on both ends.
func (m *PreKeyMessage) SessionID() string {
	return sessionID(m.IdentityKey(), m.BaseKey(), m.OneTimeKey())
}

// IdentityKey returns the sender's Curve25519 identity key.
func (m *PreKeyMessage) IdentityKey() Curve25519PublicKey { return mustKey(m.outer.IdentityKey[:]) }

// BaseKey returns the ephemeral key the sender generated for this session.
func (m *PreKeyMessage) BaseKey() Curve25519PublicKey { return mustKey(m.outer.BaseKey[:]) }

// OneTimeKey returns the recipient's one-time (or fallback) key the sender
// used.
func (m *PreKeyMessage) OneTimeKey() Curve25519PublicKey { return mustKey(m.outer.OneTimeKey[:]) }

// Message returns the normal message inside.
func (m *PreKeyMessage) Message() *Message {
	return &Message{raw: m.outer.Message, m: m.inner}
}

// Bytes returns a copy of the encoded message.
func (m *PreKeyMessage) Bytes() []byte { return append([]byte(nil), m.raw...) }

// Message is a parsed normal (type 1) message.
type Message struct {
	raw []byte
	m   *wire.OlmMessage
}

// ParseMessage parses the binary body of a normal message (the bytes, not
// their base64). Errors match [ErrDecode].
func ParseMessage(body []byte) (*Message, error) {
	raw := append([]byte(nil), body...)
	m, err := wire.DecodeOlmMessage(raw)
	if err != nil {
		return nil, err
	}
	return &Message{raw: raw, m: m}, nil
}

// RatchetKey returns the sender's ratchet key the message was sent under.
func (m *Message) RatchetKey() Curve25519PublicKey { return mustKey(m.m.RatchetKey[:]) }

// ChainIndex returns the message's position in its sending chain.
func (m *Message) ChainIndex() uint32 { return m.m.ChainIndex }

// Bytes returns a copy of the encoded message.
func (m *Message) Bytes() []byte { return append([]byte(nil), m.raw...) }

// sessionID is unpadded base64 of SHA-256(I_A ‖ E_A ‖ E_B): the initiator's
// identity key, its base key and the responder's one-time key (PROTOCOL.md §2.4).
func sessionID(identity, base, oneTime Curve25519PublicKey) string {
	var in [3 * keys.KeySize]byte
	a, b, c := identity.Array(), base.Array(), oneTime.Array()
	copy(in[0:], a[:])
	copy(in[32:], b[:])
	copy(in[64:], c[:])
	sum := sha256.Sum256(in[:])
	return b64.Encode(sum[:])
}

// mustKey converts a 32-byte field the codec has already checked.
func mustKey(b []byte) Curve25519PublicKey {
	k, err := keys.NewCurve25519PublicKeyFromBytes(b)
	if err != nil {
		panic("olm: internal error: " + err.Error())
	}
	return k
}
