package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/xolm/xolm/cryptostore"
)

// UnwedgeInterval is the least time between two attempts to recover from
// undecryptable messages with one device. The specification ("Recovering
// from undecryptable messages") asks for at most one new session per device
// per hour: an attacker who sends garbage in a device's name can make us
// claim that device's one-time keys, but no faster than this.
const UnwedgeInterval = time.Hour

// Unwedging says what was done about a wedged session (in
// [SessionWedgedError]).
type Unwedging int

const (
	// UnwedgeClaimQueued: a one-time key claim for the sender's device was
	// queued (see [Machine.OutgoingRequests]); once it creates a new Olm
	// session, an m.dummy goes out on it so that the sender starts using it.
	UnwedgeClaimQueued Unwedging = iota + 1
	// UnwedgeRateLimited: the device was unwedged less than
	// UnwedgeInterval ago; nothing more is done until the interval is over.
	UnwedgeRateLimited
	// UnwedgeDeviceUnknown: no device of the sender has the message's
	// Curve25519 key; the sender's device list is marked for a key query,
	// and the next undecryptable message from the device after the query
	// claims a key.
	UnwedgeDeviceUnknown
)

func (u Unwedging) String() string {
	switch u {
	case UnwedgeClaimQueued:
		return "claim queued"
	case UnwedgeRateLimited:
		return "unwedged recently"
	case UnwedgeDeviceUnknown:
		return "device unknown, query queued"
	}
	return fmt.Sprintf("Unwedging(%d)", int(u))
}

// markWedged starts recovering from an undecryptable message (never a
// duplicate: the caller checked) from the device with senderKey: at most once
// per UnwedgeInterval it records the attempt and queues a one-time key claim
// for the device, in the caller's transaction.
func (m *Machine) markWedged(tx *cryptostore.Tx, sender, senderKey string) (Unwedging, error) {
	last, err := tx.LastUnwedged(senderKey)
	if err != nil {
		return 0, err
	}
	if !last.IsZero() && m.now().Sub(last) < UnwedgeInterval {
		return UnwedgeRateLimited, nil
	}
	dev, err := tx.DeviceByCurve25519(senderKey)
	if err != nil && !errors.Is(err, cryptostore.ErrNotFound) {
		return 0, err
	}
	if dev == nil || dev.UserID != sender {
		// Only a key query can tell which device this is. The attempt is not
		// recorded, so that the next message after the query claims a key.
		if err := tx.TrackUser(sender, true); err != nil {
			return 0, err
		}
		return UnwedgeDeviceUnknown, nil
	}
	if err := tx.SetUnwedged(senderKey); err != nil {
		return 0, err
	}
	if err := m.queueClaimFor(tx, []*cryptostore.Device{dev}); err != nil {
		return 0, err
	}
	m.log.Info().Str("user", dev.UserID).Str("peer", dev.DeviceID).Msg("olm session wedged: claiming a new one")
	return UnwedgeClaimQueued, nil
}

// onNewOutboundSession runs after a key claim created a new Olm session with
// dev, in the same transaction. If dev was marked wedged and this is the
// first session with it since, it encrypts an m.dummy on the new session and
// queues it, so that the peer learns the session and uses it from then on. A
// session the peer started with us since the mark (it recovered first) counts
// as well: then no m.dummy is needed.
//
// The m.dummy's ciphertext comes from a sending chain advanced in tx: the
// caller must commit tx with cryptostore.Synced durability before the
// request can be sent (DESIGN.md invariant 6).
//
// The session times and the mark are compared in milliseconds; the machine
// and the store must run on the same clock (both default to time.Now).
func (m *Machine) onNewOutboundSession(tx *cryptostore.Tx, dev *cryptostore.Device) error {
	marked, err := tx.LastUnwedged(dev.Curve25519)
	if err != nil || marked.IsZero() {
		return err
	}
	recs, err := tx.OlmSessions(dev.Curve25519)
	if err != nil {
		return err
	}
	since := 0
	for _, r := range recs {
		if r.CreatedAt.UnixMilli() >= marked.UnixMilli() {
			since++
		}
	}
	if since != 1 {
		return nil // an earlier new session already carried (or made unneeded) the m.dummy
	}
	content, err := m.encryptToDevice(tx, dev, EventDummy, json.RawMessage(`{}`))
	if err != nil {
		return err
	}
	if _, err := m.queueToDevice(tx, EventRoomEncrypted, map[string]map[string]json.RawMessage{
		dev.UserID: {dev.DeviceID: content},
	}); err != nil {
		return err
	}
	m.log.Info().Str("user", dev.UserID).Str("peer", dev.DeviceID).Msg("olm session unwedged: m.dummy queued")
	return nil
}
