package machine

import "encoding/json"

// Event types of the Matrix specification the machine sends or handles.
const (
	EventRoomEncrypted    = "m.room.encrypted"
	EventRoomKey          = "m.room_key"
	EventForwardedRoomKey = "m.forwarded_room_key"
	EventDummy            = "m.dummy"
)

// MaxEventSize bounds an event's JSON as received. The homeserver limits
// events to 64 KiB (spec: "Size limits"); to-device events have the same
// bound in practice. Larger input is refused before it is parsed.
const MaxEventSize = 65536

// rawEvent is a to-device or room event as received.
type rawEvent struct {
	Type           string          `json:"type"`
	Sender         string          `json:"sender"`
	EventID        string          `json:"event_id,omitempty"`
	RoomID         string          `json:"room_id,omitempty"`
	OriginServerTS int64           `json:"origin_server_ts,omitempty"`
	Content        json.RawMessage `json:"content"`
}

// olmContent is the content of an Olm-encrypted m.room.encrypted event.
type olmContent struct {
	Algorithm  string                   `json:"algorithm"`
	SenderKey  string                   `json:"sender_key"`
	Ciphertext map[string]olmCiphertext `json:"ciphertext"`
}

type olmCiphertext struct {
	Type int    `json:"type"`
	Body string `json:"body"`
}

type ed25519Key struct {
	Ed25519 string `json:"ed25519"`
}

// olmPlaintext is the decrypted payload of an Olm message
// (spec: olm_plaintext.yaml). sender_device is not in the spec; it is sent
// for older clients and never trusted.
type olmPlaintext struct {
	Type          string          `json:"type"`
	Content       json.RawMessage `json:"content"`
	Sender        string          `json:"sender"`
	SenderDevice  string          `json:"sender_device,omitempty"`
	Recipient     string          `json:"recipient"`
	RecipientKeys ed25519Key      `json:"recipient_keys"`
	Keys          ed25519Key      `json:"keys"`
}

// megolmContent is the content of a Megolm-encrypted room event. sender_key
// and device_id are deprecated: sent, never used for lookup or trust.
type megolmContent struct {
	Algorithm  string `json:"algorithm"`
	SenderKey  string `json:"sender_key,omitempty"`
	DeviceID   string `json:"device_id,omitempty"`
	SessionID  string `json:"session_id"`
	Ciphertext string `json:"ciphertext"`
}

// megolmPlaintext is the decrypted payload of a room event.
type megolmPlaintext struct {
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	RoomID  string          `json:"room_id"`
}

// roomKeyContent is m.room_key.
type roomKeyContent struct {
	Algorithm     string `json:"algorithm"`
	RoomID        string `json:"room_id"`
	SessionID     string `json:"session_id"`
	SessionKey    string `json:"session_key"`
	SharedHistory bool   `json:"shared_history,omitempty"`
}

// forwardedRoomKeyContent is m.forwarded_room_key.
type forwardedRoomKeyContent struct {
	Algorithm                    string   `json:"algorithm"`
	RoomID                       string   `json:"room_id"`
	SenderKey                    string   `json:"sender_key"`
	SessionID                    string   `json:"session_id"`
	SessionKey                   string   `json:"session_key"`
	SenderClaimedEd25519Key      string   `json:"sender_claimed_ed25519_key"`
	ForwardingCurve25519KeyChain []string `json:"forwarding_curve25519_key_chain"`
	SharedHistory                bool     `json:"shared_history,omitempty"`
}
