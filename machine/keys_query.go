package machine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/canonicaljson"
	"github.com/xolm/xolm/olm"
)

// MaxUsersPerKeysQuery bounds the users of one /keys/query request; more
// dirty users are split over several requests.
const MaxUsersPerKeysQuery = 250

// MaxDevicesPerUser bounds the devices kept for one user. A /keys/query
// answer listing more is refused for that user, whose stored devices stay as
// they were. Real accounts have a handful of devices; a few hundred are seen
// on accounts that never log out.
const MaxDevicesPerUser = 1000

// MaxDeviceKeysSize bounds the JSON of one device-keys object (and of one
// claimed one-time key). Keys with their signatures take under 1 KiB.
const MaxDeviceKeysSize = 16 << 10

// Reasons a device's keys, or a key claimed from it, are refused. Each
// *DeviceKeysError matches one of them.
var (
	// ErrMalformedDeviceKeys: not a JSON object of the spec's shape, a key
	// missing or not 32 bytes of base64, an ID out of bounds, or too large.
	ErrMalformedDeviceKeys = errors.New("machine: malformed device keys")
	// ErrDeviceKeysMismatch: the object names another user or device than
	// the one it is listed under.
	ErrDeviceKeysMismatch = errors.New("machine: device keys listed under another user or device")
	// ErrBadKeySignature: the device's signature (on its device keys or on a
	// claimed key) is missing or does not verify with its Ed25519 key.
	ErrBadKeySignature = errors.New("machine: key signature does not verify")
	// ErrDeviceKeyChanged: a known device ID comes with another Ed25519 key
	// (for this device: not its own keys). As in matrix-rust-sdk, the new
	// keys are refused and the known device is kept.
	ErrDeviceKeyChanged = errors.New("machine: the device's ed25519 key changed")
	// ErrTooManyDevices: a user listed with more than MaxDevicesPerUser
	// devices.
	ErrTooManyDevices = errors.New("machine: too many devices")
	// ErrUnknownDevice: a key claimed from a device no query has listed.
	ErrUnknownDevice = errors.New("machine: unknown device")
)

// DeviceKeysError reports the keys of one device refused, with the reason.
// MarkRequestAsSent skips such a device and logs the error.
type DeviceKeysError struct {
	UserID, DeviceID string
	Err              error // one of the reasons above, possibly wrapping detail
}

func (e *DeviceKeysError) Error() string {
	return fmt.Sprintf("machine: device %.64q of %.64q: %v", e.DeviceID, e.UserID, e.Err)
}

// Unwrap returns the reason.
func (e *DeviceKeysError) Unwrap() error { return e.Err }

// keysQueryBody is the body of POST /keys/query: user → device IDs (empty:
// all devices).
type keysQueryBody struct {
	DeviceKeys map[string][]string `json:"device_keys"`
}

// keysQueryResponse is the part of a /keys/query response the machine uses.
type keysQueryResponse struct {
	DeviceKeys map[string]map[string]json.RawMessage `json:"device_keys"`
}

// usersToQuery returns the tracked users marked dirty that no pending query
// covers, sorted.
func (m *Machine) usersToQuery(tx *cryptostore.Tx, pending []*Request) ([]string, error) {
	dirty, err := tx.TrackedUsers(true)
	if err != nil || len(dirty) == 0 {
		return nil, err
	}
	covered := map[string]bool{}
	for _, r := range pending {
		if r.Type != RequestKeysQuery {
			continue
		}
		users, err := queriedUsers(r)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			covered[u] = true
		}
	}
	return slices.DeleteFunc(dirty, func(u string) bool { return covered[u] }), nil
}

// queueKeysQueries queues /keys/query requests for users, at most
// MaxUsersPerKeysQuery per request.
func (m *Machine) queueKeysQueries(tx *cryptostore.Tx, users []string) error {
	for chunk := range slices.Chunk(users, MaxUsersPerKeysQuery) {
		body := keysQueryBody{DeviceKeys: make(map[string][]string, len(chunk))}
		for _, u := range chunk {
			body.DeviceKeys[u] = []string{}
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		id, err := m.newRequestID()
		if err != nil {
			return err
		}
		if err := m.queueRequest(tx, &Request{ID: id, Type: RequestKeysQuery, Body: raw}); err != nil {
			return err
		}
	}
	return nil
}

// receiveKeysQuery stores the devices of each user r asked for and that is
// still tracked. A user the response does not list (its server did not
// answer) keeps its stored devices; it is marked clean all the same, so that
// an unreachable server does not make every call query again, and is queried
// at its next device-list change.
func (m *Machine) receiveKeysQuery(tx *cryptostore.Tx, r *Request, response json.RawMessage) error {
	var resp keysQueryResponse
	if err := json.Unmarshal(response, &resp); err != nil {
		return malformedResponse(r, "%w", err)
	}
	users, err := queriedUsers(r)
	if err != nil {
		return err
	}
	tracked, err := trackedSet(tx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if !tracked[u] {
			continue // stopped tracking meanwhile
		}
		devices, ok := resp.DeviceKeys[u]
		if !ok {
			m.log.Warn().Str("user", u).Msg("keys query: no answer for the user")
		} else {
			rejected, err := m.storeUserDevices(tx, u, devices)
			if err != nil {
				return err
			}
			for _, err := range rejected {
				m.log.Warn().Err(err).Msg("keys query: device refused")
			}
		}
		if err := tx.TrackUser(u, false); err != nil {
			return err
		}
	}
	return nil
}

// storeUserDevices makes the stored devices of user those listed: each is
// verified (verifyDeviceKeys) and stored if new or changed; stored devices no
// longer listed are archived. Refused devices are returned; a refused device
// that was known stays as it was.
func (m *Machine) storeUserDevices(tx *cryptostore.Tx, user string, listed map[string]json.RawMessage) ([]error, error) {
	if len(listed) > MaxDevicesPerUser {
		return []error{&DeviceKeysError{UserID: user, Err: fmt.Errorf("%w: %d listed, the limit is %d",
			ErrTooManyDevices, len(listed), MaxDevicesPerUser)}}, nil
	}
	stored, err := tx.Devices(user)
	if err != nil {
		return nil, err
	}
	known := make(map[string]*cryptostore.Device, len(stored))
	for _, d := range stored {
		known[d.DeviceID] = d
	}
	var rejected []error
	for _, id := range slices.Sorted(maps.Keys(listed)) {
		dev, err := m.verifyDeviceKeys(user, id, listed[id])
		if err == nil {
			err = m.checkKnownDevice(dev, known[id])
		}
		if err != nil {
			rejected = append(rejected, err)
			continue
		}
		if old := known[id]; old != nil && bytes.Equal(old.KeysJSON, dev.KeysJSON) {
			continue
		}
		if err := tx.PutDevice(dev); err != nil {
			return nil, err
		}
	}
	for _, d := range stored {
		if _, ok := listed[d.DeviceID]; !ok {
			if err := tx.RemoveDevice(user, d.DeviceID); err != nil {
				return nil, err
			}
		}
	}
	return rejected, nil
}

// checkKnownDevice refuses keys that would replace a device's Ed25519 key,
// and keys for this device other than its own.
func (m *Machine) checkKnownDevice(dev, known *cryptostore.Device) error {
	if dev.UserID == m.userID && dev.DeviceID == m.deviceID &&
		(dev.Ed25519 != m.ed25519 || dev.Curve25519 != m.curve25519) {
		return &DeviceKeysError{UserID: dev.UserID, DeviceID: dev.DeviceID,
			Err: fmt.Errorf("%w: the server lists other keys for this device", ErrDeviceKeyChanged)}
	}
	if known != nil && known.Ed25519 != dev.Ed25519 {
		return &DeviceKeysError{UserID: dev.UserID, DeviceID: dev.DeviceID,
			Err: fmt.Errorf("%w: known %s, listed %s", ErrDeviceKeyChanged, known.Ed25519, dev.Ed25519)}
	}
	return nil
}

// verifyDeviceKeys checks the device-keys object listed for user's device id:
// its size and shape, that it names that user and device, that both keys are
// valid, and that it carries the device's signature by its own Ed25519 key.
// It returns the device to store, with the keys in canonical base64.
func (m *Machine) verifyDeviceKeys(user, id string, raw json.RawMessage) (*cryptostore.Device, error) {
	fail := func(reason error, format string, args ...any) error {
		return &DeviceKeysError{UserID: user, DeviceID: id, Err: fmt.Errorf("%w: "+format, append([]any{reason}, args...)...)}
	}
	if !validDeviceID(id) {
		return nil, fail(ErrMalformedDeviceKeys, "device ID of %d bytes", len(id))
	}
	if len(raw) > MaxDeviceKeysSize {
		return nil, fail(ErrMalformedDeviceKeys, "%d bytes, the limit is %d", len(raw), MaxDeviceKeysSize)
	}
	var dk deviceKeysJSON
	if err := json.Unmarshal(raw, &dk); err != nil {
		return nil, fail(ErrMalformedDeviceKeys, "%v", err)
	}
	if dk.UserID != user || dk.DeviceID != id {
		return nil, fail(ErrDeviceKeysMismatch, "the keys name device %.64q of %.64q", dk.DeviceID, dk.UserID)
	}
	ed, err := olm.ParseEd25519PublicKey(dk.Keys["ed25519:"+id])
	if err != nil {
		return nil, fail(ErrMalformedDeviceKeys, "ed25519 key: %v", err)
	}
	curve, err := olm.ParseCurve25519PublicKey(dk.Keys["curve25519:"+id])
	if err != nil {
		return nil, fail(ErrMalformedDeviceKeys, "curve25519 key: %v", err)
	}
	if err := canonicaljson.Verify(raw, user, id, ed); err != nil {
		return nil, fail(ErrBadKeySignature, "%v", err)
	}
	return &cryptostore.Device{
		UserID: user, DeviceID: id,
		Curve25519: curve.String(), Ed25519: ed.String(),
		KeysJSON: bytes.Clone(raw), UpdatedAt: m.now(),
	}, nil
}
