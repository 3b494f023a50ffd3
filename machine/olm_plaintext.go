package machine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/canonicaljson"
	"github.com/xolm/xolm/olm"
)

// ErrInvalidOlmPlaintext is matched by [*OlmPlaintextError].
var ErrInvalidOlmPlaintext = errors.New("machine: olm plaintext fails validation")

// OlmPlaintextError reports a decrypted Olm payload that fails the checks of
// the specification ("Validation of incoming decrypted events"): Field names
// the field, Got what it held and Want what it had to hold. Nothing was
// stored for the event: the session was not advanced and a one-time key it
// used was kept.
type OlmPlaintextError struct {
	Field     string
	Got, Want string
	Err       error // a parse or signature failure, if any
}

func (e *OlmPlaintextError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("machine: olm plaintext: %s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("machine: olm plaintext: %s is %q, want %q", e.Field, e.Got, e.Want)
}

// Unwrap returns the parse or signature failure.
func (e *OlmPlaintextError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidOlmPlaintext) true.
func (e *OlmPlaintextError) Is(target error) bool { return target == ErrInvalidOlmPlaintext }

// receivedPlaintext is a decrypted Olm payload with the optional
// sender_device_keys (spec v1.15, MSC4147): the sender's signed device keys.
// parsePlaintext fills it; sender_device, never trusted, is not read.
type receivedPlaintext struct {
	olmPlaintext
	SenderDeviceKeys json.RawMessage
}

// senderDeviceKeys is the part of sender_device_keys the checks read.
type senderDeviceKeys struct {
	UserID   string            `json:"user_id"`
	DeviceID string            `json:"device_id"`
	Keys     map[string]string `json:"keys"`
}

// checkPlaintext parses a decrypted payload and checks it against the event
// and the keys: sender is the event's sender, recipient and recipient_keys
// are this device, keys.ed25519 is present and, when the sending device is
// known by its Curve25519 key, is that device's key (and the device belongs
// to the sender); sender_device_keys, when present, must name the same keys
// and carry a valid self-signature.
func (b *toDeviceBatch) checkPlaintext(sender, senderKey string, plaintext []byte) (*receivedPlaintext, cryptostore.DeviceIdentity, error) {
	var unknown cryptostore.DeviceIdentity // returned with every failure
	dev, err := b.device(senderKey)
	if err != nil {
		return nil, unknown, err
	}
	want := olmPlaintext{Sender: sender, Recipient: b.m.userID,
		RecipientKeys: ed25519Key{Ed25519: b.m.ed25519}, Keys: ed25519Key{Ed25519: dev.Ed25519}}
	p, err := parsePlaintext(plaintext, &want)
	if err != nil {
		return nil, unknown, &OlmPlaintextError{Field: "plaintext", Err: err}
	}
	if err := checkFields(
		fieldCheck{"sender", p.Sender, sender},
		fieldCheck{"recipient", p.Recipient, b.m.userID},
		fieldCheck{"recipient_keys.ed25519", p.RecipientKeys.Ed25519, b.m.ed25519},
	); err != nil {
		return nil, unknown, err
	}
	if p.Type == "" {
		return nil, unknown, &OlmPlaintextError{Field: "type", Want: "an event type"}
	}
	if len(p.Content) == 0 || p.Content[0] != '{' {
		return nil, unknown, &OlmPlaintextError{Field: "content", Got: string(p.Content), Want: "an object"}
	}
	if p.Keys.Ed25519 == "" {
		return nil, unknown, &OlmPlaintextError{Field: "keys.ed25519", Want: "the sender's Ed25519 key"}
	}
	if dev.Known() {
		if err := checkFields(
			fieldCheck{"sender", sender, dev.UserID},
			fieldCheck{"keys.ed25519", p.Keys.Ed25519, dev.Ed25519},
		); err != nil {
			return nil, unknown, err
		}
	}
	if len(p.SenderDeviceKeys) > 0 && string(p.SenderDeviceKeys) != "null" {
		if err := checkSenderDeviceKeys(p.SenderDeviceKeys, sender, senderKey, p.Keys.Ed25519); err != nil {
			return nil, unknown, err
		}
	}
	return p, dev, nil
}

// parsePlaintext reads the fields of a decrypted payload that the checks and
// the machine use, in one pass. The values it returns are copies: the
// plaintext is cleared after use. A string field that holds the value the
// checks want (want's sender, recipient and keys) is want's string.
func parsePlaintext(plaintext []byte, want *olmPlaintext) (*receivedPlaintext, error) {
	var typ, content, sender, recipient, recipientKeys, keys, deviceKeys, recipientEd, ed []byte
	err := readObject(plaintext, jsonMember{"type", &typ}, jsonMember{"content", &content},
		jsonMember{"sender", &sender}, jsonMember{"recipient", &recipient},
		jsonMember{"recipient_keys", &recipientKeys}, jsonMember{"keys", &keys},
		jsonMember{"sender_device_keys", &deviceKeys})
	if err != nil {
		return nil, err
	}
	if err := readMemberObject(recipientKeys, jsonMember{"ed25519", &recipientEd}); err != nil {
		return nil, err
	}
	if err := readMemberObject(keys, jsonMember{"ed25519", &ed}); err != nil {
		return nil, err
	}
	p := &receivedPlaintext{SenderDeviceKeys: bytes.Clone(deviceKeys)}
	p.Content = bytes.Clone(content)
	for _, f := range []struct {
		dst  *string
		raw  []byte
		want string
	}{{&p.Type, typ, ""}, {&p.Sender, sender, want.Sender}, {&p.Recipient, recipient, want.Recipient},
		{&p.RecipientKeys.Ed25519, recipientEd, want.RecipientKeys.Ed25519}, {&p.Keys.Ed25519, ed, want.Keys.Ed25519}} {
		if *f.dst, err = jsonStringWant(f.raw, f.want); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// checkSenderDeviceKeys checks the sender_device_keys of a plaintext: the
// sender's user, the Curve25519 key of the session, the claimed Ed25519 key,
// and the device's signature with that key.
func checkSenderDeviceKeys(raw json.RawMessage, sender, senderKey, ed25519 string) error {
	var k senderDeviceKeys
	if err := json.Unmarshal(raw, &k); err != nil {
		return &OlmPlaintextError{Field: "sender_device_keys", Err: err}
	}
	if err := checkFields(
		fieldCheck{"sender_device_keys.user_id", k.UserID, sender},
		fieldCheck{"sender_device_keys.keys.curve25519", k.Keys["curve25519:"+k.DeviceID], senderKey},
		fieldCheck{"sender_device_keys.keys.ed25519", k.Keys["ed25519:"+k.DeviceID], ed25519},
	); err != nil {
		return err
	}
	pub, err := olm.ParseEd25519PublicKey(ed25519)
	if err != nil {
		return &OlmPlaintextError{Field: "keys.ed25519", Err: err}
	}
	if err := canonicaljson.Verify(raw, sender, k.DeviceID, pub); err != nil {
		return &OlmPlaintextError{Field: "sender_device_keys.signatures", Err: err}
	}
	return nil
}

// fieldCheck is one equality the plaintext must satisfy.
type fieldCheck struct{ field, got, want string }

// checkFields returns the first check that fails, as an *OlmPlaintextError.
func checkFields(checks ...fieldCheck) error {
	for _, c := range checks {
		if c.got != c.want {
			return &OlmPlaintextError{Field: c.field, Got: c.got, Want: c.want}
		}
	}
	return nil
}
