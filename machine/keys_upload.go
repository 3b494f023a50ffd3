package machine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/canonicaljson"
	"github.com/xolm/xolm/olm"
)

// oneTimeKeyAlgorithm is the only one-time and fallback key algorithm of
// Matrix's Olm: a Curve25519 key signed by the device.
const oneTimeKeyAlgorithm = "signed_curve25519"

// TargetOneTimeKeys is how many one-time keys the machine keeps published on
// the server: half of what the account holds (olm.MaxOneTimeKeys), the
// convention of libolm and matrix-rust-sdk, so that keys claimed but not yet
// used by their peers are still held when new ones are generated.
const TargetOneTimeKeys = olm.MaxOneTimeKeys / 2

// uploadPlan says what a due /keys/upload must carry beyond the keys not yet
// published.
type uploadPlan struct {
	newOneTimeKeys int  // one-time keys to generate
	newFallbackKey bool // generate a fallback key
}

// planKeysUpload returns the upload that is due, or nil: none while one is
// pending, else one when the device keys were never uploaded, keys are not
// yet published, the server holds fewer than TargetOneTimeKeys one-time keys
// or has used up its fallback key.
func (m *Machine) planKeysUpload(tx *cryptostore.Tx, pending []*Request) (*uploadPlan, error) {
	if slices.ContainsFunc(pending, func(r *Request) bool { return r.Type == RequestKeysUpload }) {
		return nil, nil
	}
	rec, err := tx.Account()
	if err != nil {
		return nil, err
	}
	counts, err := tx.ServerKeyCounts()
	if err != nil {
		return nil, err
	}
	acct := rec.Account
	onServer := counts.OneTimeKeys
	if onServer < 0 && !rec.Shared {
		onServer = 0 // a new device: nothing was ever uploaded
	}
	var p uploadPlan
	if onServer >= 0 {
		// Keys generated but not yet published count as on their way.
		p.newOneTimeKeys = max(0, TargetOneTimeKeys-onServer-len(acct.OneTimeKeys()))
	}
	current, hasFallback := acct.FallbackKey()
	_, fallbackUnpublished := acct.UnpublishedFallbackKey()
	switch {
	case !hasFallback:
		p.newFallbackKey = true
	case counts.FallbackKeyUsed && !fallbackUnpublished:
		// The server gave the published fallback key out and holds no
		// other. The key stays usable as the previous one.
		m.log.Debug().Stringer("fallback_key_id", current.ID).Msg("fallback key used, generating a new one")
		p.newFallbackKey = true
	}
	if !rec.Shared || p.newOneTimeKeys > 0 || p.newFallbackKey || fallbackUnpublished || len(acct.OneTimeKeys()) > 0 {
		return &p, nil
	}
	return nil, nil
}

// keysUploadBody is the body of POST /keys/upload.
type keysUploadBody struct {
	DeviceKeys   json.RawMessage            `json:"device_keys,omitempty"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys,omitempty"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys,omitempty"`
}

// deviceKeysJSON is a device-keys object, as uploaded and as listed by
// /keys/query (which may add signatures and unsigned data).
type deviceKeysJSON struct {
	UserID     string            `json:"user_id"`
	DeviceID   string            `json:"device_id"`
	Algorithms []string          `json:"algorithms"`
	Keys       map[string]string `json:"keys"`
}

// oneTimeKeyJSON is a signed one-time or fallback key. "fallback" is part of
// the signed JSON.
type oneTimeKeyJSON struct {
	Key      string `json:"key"`
	Fallback bool   `json:"fallback,omitempty"`
}

// queueKeysUpload generates the keys p asks for, stores the account (the
// keys with the ID counter that numbers them), and queues one upload of
// every key not yet published, plus the device keys if they were never
// uploaded. The caller commits with Synced durability.
func (m *Machine) queueKeysUpload(tx *cryptostore.Tx, p *uploadPlan) error {
	rec, err := tx.Account()
	if err != nil {
		return err
	}
	acct := rec.Account
	if p.newOneTimeKeys > 0 {
		if err := acct.GenerateOneTimeKeys(m.rand, p.newOneTimeKeys); err != nil {
			return err
		}
	}
	if p.newFallbackKey {
		if err := acct.GenerateFallbackKey(m.rand); err != nil {
			return err
		}
	}
	if p.newOneTimeKeys > 0 || p.newFallbackKey {
		if err := tx.PutAccount(rec); err != nil {
			return err
		}
	}
	var body keysUploadBody
	if !rec.Shared {
		if body.DeviceKeys, err = m.signKeysJSON(acct, m.ownDeviceKeys()); err != nil {
			return err
		}
	}
	for _, k := range acct.OneTimeKeys() {
		signed, err := m.signKeysJSON(acct, oneTimeKeyJSON{Key: k.Key.String()})
		if err != nil {
			return err
		}
		if body.OneTimeKeys == nil {
			body.OneTimeKeys = map[string]json.RawMessage{}
		}
		body.OneTimeKeys[oneTimeKeyAlgorithm+":"+k.ID.String()] = signed
	}
	if k, ok := acct.UnpublishedFallbackKey(); ok {
		signed, err := m.signKeysJSON(acct, oneTimeKeyJSON{Key: k.Key.String(), Fallback: true})
		if err != nil {
			return err
		}
		body.FallbackKeys = map[string]json.RawMessage{oneTimeKeyAlgorithm + ":" + k.ID.String(): signed}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	id, err := m.newRequestID()
	if err != nil {
		return err
	}
	m.log.Info().Str("request", id).Int("one_time_keys", len(body.OneTimeKeys)).
		Bool("fallback_key", body.FallbackKeys != nil).Bool("device_keys", body.DeviceKeys != nil).
		Msg("keys upload queued")
	return m.queueRequest(tx, &Request{ID: id, Type: RequestKeysUpload, Body: raw})
}

// ownDeviceKeys returns this device's unsigned device-keys object.
func (m *Machine) ownDeviceKeys() deviceKeysJSON {
	return deviceKeysJSON{
		UserID:     m.userID,
		DeviceID:   m.deviceID,
		Algorithms: []string{OlmAlgorithm, MegolmAlgorithm},
		Keys: map[string]string{
			"curve25519:" + m.deviceID: m.curve25519,
			"ed25519:" + m.deviceID:    m.ed25519,
		},
	}
}

// signKeysJSON returns v, which must encode as a JSON object without
// "signatures" or "unsigned", in canonical form with this device's signature
// added at signatures[user]["ed25519:"+device] (spec appendices, "Signing
// JSON").
func (m *Machine) signKeysJSON(acct *olm.Account, v any) (json.RawMessage, error) {
	canonical, err := canonicaljson.Marshal(v)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(canonical, &obj); err != nil {
		return nil, err
	}
	sigs, err := json.Marshal(map[string]map[string]string{
		m.userID: {"ed25519:" + m.deviceID: b64.Encode(acct.Sign(canonical))},
	})
	if err != nil {
		return nil, err
	}
	obj["signatures"] = sigs
	return canonicaljson.Marshal(obj)
}

// keysUploadResponse is the response of POST /keys/upload.
type keysUploadResponse struct {
	OneTimeKeyCounts map[string]int `json:"one_time_key_counts"`
}

// receiveKeysUpload marks exactly the keys r uploaded as published, the
// device keys as shared if r carried them, and records the server's count.
func (m *Machine) receiveKeysUpload(tx *cryptostore.Tx, r *Request, response json.RawMessage) error {
	var resp keysUploadResponse
	if err := json.Unmarshal(response, &resp); err != nil {
		return malformedResponse(r, "%w", err)
	}
	if resp.OneTimeKeyCounts == nil {
		return malformedResponse(r, "no one_time_key_counts")
	}
	count, reported := resp.OneTimeKeyCounts[oneTimeKeyAlgorithm]
	if count < 0 {
		return malformedResponse(r, "one-time key count %d", count)
	}
	var body keysUploadBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return fmt.Errorf("machine: stored request %s: %w", r.ID, err)
	}
	rec, err := tx.Account()
	if err != nil {
		return err
	}
	rec.Account, err = markPublished(rec.Account, uploadedKeyIDs(body.OneTimeKeys), uploadedKeyIDs(body.FallbackKeys))
	if err != nil {
		return err
	}
	rec.Shared = rec.Shared || body.DeviceKeys != nil
	if err := tx.PutAccount(rec); err != nil {
		return err
	}
	counts, err := tx.ServerKeyCounts()
	if err != nil {
		return err
	}
	if reported {
		counts.OneTimeKeys = count
	}
	if body.FallbackKeys != nil {
		counts.FallbackKeyUsed = false
	}
	return tx.PutServerKeyCounts(counts)
}

// uploadedKeyIDs returns the key IDs of a one_time_keys or fallback_keys map.
func uploadedKeyIDs(keys map[string]json.RawMessage) map[string]bool {
	ids := make(map[string]bool, len(keys))
	for name := range keys {
		if id, ok := strings.CutPrefix(name, oneTimeKeyAlgorithm+":"); ok {
			ids[id] = true
		}
	}
	return ids
}

// markPublished returns acct with the one-time keys whose IDs are in otks,
// and the current fallback key if its ID is in fallback, marked as
// published, and no other key. olm.Account marks all of its keys at once;
// when that is not exactly the uploaded set (a key was generated after the
// upload was queued), the account is rebuilt key by key with the right flags.
func markPublished(acct *olm.Account, otks, fallback map[string]bool) (*olm.Account, error) {
	fb, fbUnpublished := acct.UnpublishedFallbackKey()
	exact := !fbUnpublished || fallback[fb.ID.String()]
	for _, k := range acct.OneTimeKeys() {
		exact = exact && otks[k.ID.String()]
	}
	if exact {
		acct.MarkKeysAsPublished()
		return acct, nil
	}
	// The sealed copies below never leave this function: any key will do.
	var key [32]byte
	out, err := olm.UnpickleAccount(acct.PickleWithoutOneTimeKeys(&key, nil), &key, nil)
	if err != nil {
		return nil, err
	}
	if fbUnpublished && fallback[fb.ID.String()] {
		out.MarkKeysAsPublished() // no one-time keys yet: only the fallback key
	}
	for _, k := range acct.AllOneTimeKeys() {
		sealed, err := acct.PickleOneTimeKey(k.ID, &key, nil)
		if err != nil {
			return nil, err
		}
		if err := out.AddPickledOneTimeKey(sealed, k.Published || otks[k.ID.String()], &key, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recordOneTimeKeyCounts stores what a sync response says about this
// device's keys on the server: counts is device_one_time_keys_count (nil or
// without signed_curve25519: not reported), unusedFallback is
// device_unused_fallback_key_types (nil: not reported). OutgoingRequests
// then tops the one-time keys up to TargetOneTimeKeys and replaces a used
// fallback key. Values that make no sense (a negative count) are ignored,
// never an error: an error here would fail the whole sync batch.
func (m *Machine) recordOneTimeKeyCounts(tx *cryptostore.Tx, counts map[string]int, unusedFallback []string) error {
	if counts == nil && unusedFallback == nil {
		return nil // nothing reported: no need to read what is stored
	}
	stored, err := tx.ServerKeyCounts()
	if err != nil {
		return err
	}
	next := stored
	if n, ok := counts[oneTimeKeyAlgorithm]; ok {
		if n >= 0 {
			next.OneTimeKeys = n
		} else {
			m.log.Warn().Int("count", n).Msg("negative one-time key count ignored")
		}
	}
	if unusedFallback != nil {
		next.FallbackKeyUsed = !slices.Contains(unusedFallback, oneTimeKeyAlgorithm)
	}
	if next == stored {
		return nil
	}
	return tx.PutServerKeyCounts(next)
}
