package machine

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
)

// ErrNoOlmSession reports a device this device has no Olm session with yet:
// claim one of its one-time keys first (a KeysClaim request).
var ErrNoOlmSession = errors.New("machine: no olm session with the device")

// encryptToDevice encrypts a to-device event for one device with the most
// recently used Olm session with it, and stores the advanced session in tx.
// The caller must commit tx with Synced durability before the returned
// content leaves the device (DESIGN.md invariant 6). It returns the content
// of an m.room.encrypted event.
func (m *Machine) encryptToDevice(tx *cryptostore.Tx, dev *cryptostore.Device, eventType string, content json.RawMessage) (json.RawMessage, error) {
	recs, err := tx.OlmSessions(dev.Curve25519)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: %s %s", ErrNoOlmSession, dev.UserID, dev.DeviceID)
	}
	rec := recs[0] // a copy: changed here, stored below
	plaintext, err := json.Marshal(olmPlaintext{
		Type:          eventType,
		Content:       content,
		Sender:        m.userID,
		SenderDevice:  m.deviceID,
		Recipient:     dev.UserID,
		RecipientKeys: ed25519Key{Ed25519: dev.Ed25519},
		Keys:          ed25519Key{Ed25519: m.ed25519},
	})
	if err != nil {
		return nil, err
	}
	typ, body, err := rec.Session.Encrypt(m.rand, plaintext)
	clear(plaintext)
	if err != nil {
		return nil, fmt.Errorf("machine: olm encrypt: %w", err)
	}
	rec.LastUsedAt = m.now()
	if err := tx.PutOlmSession(rec); err != nil {
		return nil, err
	}
	return json.Marshal(olmContent{
		Algorithm:  OlmAlgorithm,
		SenderKey:  m.curve25519,
		Ciphertext: map[string]olmCiphertext{dev.Curve25519: {Type: int(typ), Body: b64.Encode(body)}},
	})
}
