package machine

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/canonicaljson"
	"github.com/xolm/xolm/olm"
)

// keysClaimBody is the body of POST /keys/claim: user → device → algorithm.
type keysClaimBody struct {
	OneTimeKeys map[string]map[string]string `json:"one_time_keys"`
}

// keysClaimResponse is the part of a /keys/claim response the machine uses:
// user → device → "signed_curve25519:<id>" → signed key.
type keysClaimResponse struct {
	OneTimeKeys map[string]map[string]map[string]json.RawMessage `json:"one_time_keys"`
}

// deviceRef names one device.
type deviceRef struct{ user, device string }

// GetMissingSessions returns a /keys/claim request for the known devices of
// users that have no Olm session with this device yet (and that support
// Olm), or nil when there are none. The request is queued: it is also
// returned by [Machine.OutgoingRequests] until marked as sent, and a second
// call returns it again (same ID) rather than claim twice; send it once and
// report the response with [Machine.MarkRequestAsSent], which creates the
// sessions. Query the users' devices first ([Machine.UpdateTrackedUsers]).
func (m *Machine) GetMissingSessions(ctx context.Context, users []string) (*Request, error) {
	var out *Request
	err := m.store.Update(ctx, "machine: get missing sessions", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		out = nil
		var missing []*cryptostore.Device
		for _, u := range users {
			devices, err := tx.Devices(u)
			if err != nil {
				return err
			}
			for _, d := range devices {
				if d.UserID == m.userID && d.DeviceID == m.deviceID || !supportsOlm(d) {
					continue
				}
				sessions, err := tx.OlmSessions(d.Curve25519)
				if err != nil {
					return err
				}
				if len(sessions) == 0 {
					missing = append(missing, d)
				}
			}
		}
		var err error
		out, err = m.queueClaim(tx, missing)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("machine: get missing sessions: %w", err)
	}
	return out, nil
}

// supportsOlm reports whether a device lists the Olm algorithm.
func supportsOlm(d *cryptostore.Device) bool {
	var dk deviceKeysJSON
	return json.Unmarshal(d.KeysJSON, &dk) == nil && slices.Contains(dk.Algorithms, OlmAlgorithm)
}

// queueClaimFor queues a /keys/claim for devices, whether or not a session
// with them exists (the unwedging code asks for a fresh one), unless a
// pending claim already covers them.
func (m *Machine) queueClaimFor(tx *cryptostore.Tx, devices []*cryptostore.Device) error {
	_, err := m.queueClaim(tx, devices)
	return err
}

// queueClaim queues one claim for the devices no pending claim covers, and
// returns it; when every device is covered it returns the oldest pending
// claim that covers one of them, and nil for no devices.
func (m *Machine) queueClaim(tx *cryptostore.Tx, devices []*cryptostore.Device) (*Request, error) {
	if len(devices) == 0 {
		return nil, nil
	}
	pending, err := pendingRequests(tx)
	if err != nil {
		return nil, err
	}
	covering := map[deviceRef]*Request{}
	for _, r := range pending {
		if r.Type != RequestKeysClaim {
			continue
		}
		var body keysClaimBody
		if err := json.Unmarshal(r.Body, &body); err != nil {
			return nil, fmt.Errorf("machine: stored request %s: %w", r.ID, err)
		}
		for u, ds := range body.OneTimeKeys {
			for d := range ds {
				if covering[deviceRef{u, d}] == nil {
					covering[deviceRef{u, d}] = r
				}
			}
		}
	}
	body := keysClaimBody{OneTimeKeys: map[string]map[string]string{}}
	var covered *Request
	for _, d := range devices {
		if r := covering[deviceRef{d.UserID, d.DeviceID}]; r != nil {
			if covered == nil {
				covered = r
			}
			continue
		}
		if body.OneTimeKeys[d.UserID] == nil {
			body.OneTimeKeys[d.UserID] = map[string]string{}
		}
		body.OneTimeKeys[d.UserID][d.DeviceID] = oneTimeKeyAlgorithm
	}
	if len(body.OneTimeKeys) == 0 {
		return covered, nil
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	id, err := m.newRequestID()
	if err != nil {
		return nil, err
	}
	r := &Request{ID: id, Type: RequestKeysClaim, Body: raw}
	return r, m.queueRequest(tx, r)
}

// receiveKeysClaim creates an Olm session with each device r claimed a key
// from whose key verifies, stores it, and runs afterSessionCreated for it.
// Devices the response has no key for, or whose key is refused, are skipped
// (and the refusal logged).
func (m *Machine) receiveKeysClaim(tx *cryptostore.Tx, r *Request, response json.RawMessage) error {
	var resp keysClaimResponse
	if err := json.Unmarshal(response, &resp); err != nil {
		return malformedResponse(r, "%w", err)
	}
	var body keysClaimBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return fmt.Errorf("machine: stored request %s: %w", r.ID, err)
	}
	var acct *olm.Account
	for _, u := range slices.Sorted(maps.Keys(body.OneTimeKeys)) {
		var known []*cryptostore.Device
		for _, id := range slices.Sorted(maps.Keys(body.OneTimeKeys[u])) {
			keys, ok := resp.OneTimeKeys[u][id]
			if !ok {
				continue
			}
			if known == nil {
				var err error
				if known, err = tx.Devices(u); err != nil {
					return err
				}
			}
			i := slices.IndexFunc(known, func(d *cryptostore.Device) bool { return d.DeviceID == id })
			if i < 0 {
				m.log.Warn().Err(&DeviceKeysError{UserID: u, DeviceID: id, Err: ErrUnknownDevice}).Msg("keys claim: key refused")
				continue
			}
			dev := known[i]
			otk, err := claimedKey(dev, keys)
			if err != nil {
				m.log.Warn().Err(err).Msg("keys claim: key refused")
				continue
			}
			if acct == nil {
				rec, err := tx.Account()
				if err != nil {
					return err
				}
				acct = rec.Account
			}
			if err := m.createOutboundSession(tx, acct, dev, otk); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimedKey checks the keys claimed from dev: exactly one signed_curve25519
// key, signed by the device's Ed25519 key, and returns it.
func claimedKey(dev *cryptostore.Device, keys map[string]json.RawMessage) (olm.Curve25519PublicKey, error) {
	fail := func(reason error, format string, args ...any) error {
		return &DeviceKeysError{UserID: dev.UserID, DeviceID: dev.DeviceID,
			Err: fmt.Errorf("%w: claimed key: "+format, append([]any{reason}, args...)...)}
	}
	var raw json.RawMessage
	for name, k := range keys {
		if !strings.HasPrefix(name, oneTimeKeyAlgorithm+":") {
			continue
		}
		if raw != nil {
			return olm.Curve25519PublicKey{}, fail(ErrMalformedDeviceKeys, "more than one key")
		}
		raw = k
	}
	if raw == nil {
		return olm.Curve25519PublicKey{}, fail(ErrMalformedDeviceKeys, "no %s key", oneTimeKeyAlgorithm)
	}
	if len(raw) > MaxDeviceKeysSize {
		return olm.Curve25519PublicKey{}, fail(ErrMalformedDeviceKeys, "%d bytes", len(raw))
	}
	var k oneTimeKeyJSON
	if err := json.Unmarshal(raw, &k); err != nil {
		return olm.Curve25519PublicKey{}, fail(ErrMalformedDeviceKeys, "%v", err)
	}
	otk, err := olm.ParseCurve25519PublicKey(k.Key)
	if err != nil {
		return olm.Curve25519PublicKey{}, fail(ErrMalformedDeviceKeys, "%v", err)
	}
	ed, err := olm.ParseEd25519PublicKey(dev.Ed25519)
	if err != nil {
		return olm.Curve25519PublicKey{}, fail(ErrMalformedDeviceKeys, "stored ed25519 key: %v", err)
	}
	if err := canonicaljson.Verify(raw, dev.UserID, dev.DeviceID, ed); err != nil {
		return olm.Curve25519PublicKey{}, fail(ErrBadKeySignature, "%v", err)
	}
	return otk, nil
}

// createOutboundSession starts an Olm session with dev from its claimed key,
// stores it as the device's most recently used session, and runs
// afterSessionCreated.
func (m *Machine) createOutboundSession(tx *cryptostore.Tx, acct *olm.Account, dev *cryptostore.Device, otk olm.Curve25519PublicKey) error {
	identity, err := olm.ParseCurve25519PublicKey(dev.Curve25519)
	if err != nil {
		return fmt.Errorf("machine: stored device %s %s: %w", dev.UserID, dev.DeviceID, err)
	}
	sess, err := acct.NewOutboundSession(m.rand, identity, otk)
	if err != nil {
		// A low-order key from the peer: nothing to store.
		m.log.Warn().Err(&DeviceKeysError{UserID: dev.UserID, DeviceID: dev.DeviceID, Err: err}).
			Msg("keys claim: no session")
		return nil
	}
	now := m.now()
	rec := &cryptostore.OlmSessionRecord{SenderKey: dev.Curve25519, Session: sess, CreatedAt: now, LastUsedAt: now}
	if err := tx.PutOlmSession(rec); err != nil {
		return err
	}
	m.log.Info().Str("user", dev.UserID).Str("device", dev.DeviceID).Str("session", sess.ID()).
		Msg("olm session created")
	return m.afterSessionCreated(tx, dev)
}

// afterSessionCreated runs, in the transaction that stored it, what other
// steps attach to a new outbound Olm session with dev: the unwedging code
// sends an m.dummy over it to a device marked as wedged. The transaction is
// committed with Synced durability (MarkRequestAsSent for a claim), as that
// ciphertext leaves the device.
func (m *Machine) afterSessionCreated(tx *cryptostore.Tx, dev *cryptostore.Device) error {
	return m.onNewOutboundSession(tx, dev)
}
