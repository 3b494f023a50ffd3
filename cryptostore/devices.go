package cryptostore

import (
	"errors"
	"fmt"
	"time"
)

// Device is another device's published keys, as verified from /keys/query.
type Device struct {
	UserID, DeviceID string
	Curve25519       string
	Ed25519          string
	// KeysJSON is the signed device-keys object as received.
	KeysJSON  []byte
	UpdatedAt time.Time
}

const tableDevices = "devices"

// anyDevice is the cache entry name a device write records: a write may
// move an identity key from one device to another, so it stales every
// cached lookup by key.
const anyDevice = "*"

func (d *Device) clone() *Device {
	c := *d
	c.KeysJSON = append([]byte(nil), d.KeysJSON...)
	return &c
}

// devicesWritten records a device write: the transaction's own lookups go to
// SQLite from now on, and the commit empties the cached lookups.
func (t *Tx) devicesWritten() {
	t.wrote(cacheEntry{table: tableDevices, key: anyDevice})
	t.afterCommit(func() { t.s.cache.devices.purge() })
}

// PutDevice stores or replaces a device's keys. A device whose identity keys
// changed is archived first: a changed key is suspicious and its old value is
// evidence worth keeping.
func (t *Tx) PutDevice(d *Device) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	var curve, ed string
	err := t.tx.QueryRow(`SELECT curve25519, ed25519 FROM devices WHERE user_id = ? AND device_id = ?`,
		d.UserID, d.DeviceID).Scan(&curve, &ed)
	if err == nil && (curve != d.Curve25519 || ed != d.Ed25519) {
		if err := t.archiveDevice(d.UserID, d.DeviceID); err != nil {
			return err
		}
	}
	_, err = t.tx.Exec(`INSERT INTO devices (user_id, device_id, curve25519, ed25519, keys_json, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET curve25519 = excluded.curve25519,
		ed25519 = excluded.ed25519, keys_json = excluded.keys_json, updated_at = excluded.updated_at`,
		d.UserID, d.DeviceID, d.Curve25519, d.Ed25519, d.KeysJSON, d.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("cryptostore: put device: %w", err)
	}
	t.devicesWritten()
	return nil
}

// RemoveDevice archives a device that its user no longer lists.
func (t *Tx) RemoveDevice(userID, deviceID string) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	return t.archiveDevice(userID, deviceID)
}

func (t *Tx) archiveDevice(userID, deviceID string) error {
	t.devicesWritten()
	if _, err := t.tx.Exec(`INSERT INTO archived_devices
		(user_id, device_id, curve25519, ed25519, keys_json, updated_at, archived_at)
		SELECT user_id, device_id, curve25519, ed25519, keys_json, updated_at, ? FROM devices
		WHERE user_id = ? AND device_id = ?`, t.s.nowMillis(), userID, deviceID); err != nil {
		return fmt.Errorf("cryptostore: archive device: %w", err)
	}
	_, err := t.tx.Exec(`DELETE FROM devices WHERE user_id = ? AND device_id = ?`, userID, deviceID)
	return err
}

// Devices lists a user's devices, ordered by device ID.
func (t *Tx) Devices(userID string) ([]*Device, error) {
	rows, err := t.tx.Query(`SELECT device_id, curve25519, ed25519, keys_json, updated_at FROM devices
		WHERE user_id = ? ORDER BY device_id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Device
	for rows.Next() {
		d := &Device{UserID: userID}
		var updated int64
		if err := rows.Scan(&d.DeviceID, &d.Curve25519, &d.Ed25519, &d.KeysJSON, &updated); err != nil {
			return nil, err
		}
		d.UpdatedAt = time.UnixMilli(updated)
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeviceByCurve25519 finds the device with the given identity key, or
// ErrNotFound.
func (t *Tx) DeviceByCurve25519(key string) (*Device, error) {
	d, err := t.deviceByCurve25519(key)
	if err != nil {
		return nil, err
	}
	return d.clone(), nil
}

// DeviceIdentity is who a device is: the user and device IDs and the
// Ed25519 key a message from its Curve25519 key is checked against.
type DeviceIdentity struct {
	UserID, DeviceID, Ed25519 string
}

// Known reports whether the identity names a device (the zero value does
// not).
func (d DeviceIdentity) Known() bool { return d.DeviceID != "" }

// DeviceIdentity is DeviceByCurve25519 for a caller that needs only the
// device's identity: it copies no signed keys object (a to-device event
// looks its sender up on every decryption). ErrNotFound if no device has the
// key.
func (t *Tx) DeviceIdentity(curve25519 string) (DeviceIdentity, error) {
	d, err := t.deviceByCurve25519(curve25519)
	if err != nil {
		return DeviceIdentity{}, err
	}
	return DeviceIdentity{UserID: d.UserID, DeviceID: d.DeviceID, Ed25519: d.Ed25519}, nil
}

// deviceByCurve25519 looks a device up by identity key, in the cache unless
// the transaction wrote devices, or ErrNotFound. The device returned may be
// the cache's: callers copy what they hand on and change nothing.
func (t *Tx) deviceByCurve25519(key string) (*Device, error) {
	d, ok := t.s.cache.devices.get(key, t.gen)
	if !ok || t.changed(cacheEntry{table: tableDevices, key: anyDevice}) {
		d = &Device{Curve25519: key}
		var updated int64
		err := t.tx.QueryRow(`SELECT user_id, device_id, ed25519, keys_json, updated_at FROM devices
			WHERE curve25519 = ? ORDER BY updated_at DESC LIMIT 1`, key).
			Scan(&d.UserID, &d.DeviceID, &d.Ed25519, &d.KeysJSON, &updated)
		if err = noRows(err); errors.Is(err, ErrNotFound) {
			d = nil // remembered too: an unknown sender is looked up per message
		} else if err != nil {
			return nil, err
		} else {
			d.UpdatedAt = time.UnixMilli(updated)
		}
		if !t.changed(cacheEntry{table: tableDevices, key: anyDevice}) {
			cached := d
			t.cacheRead(func() { t.s.cache.devices.put(key, cached, t.gen) })
		}
	}
	if d == nil {
		return nil, ErrNotFound
	}
	return d, nil
}

// TrackUser marks a user's device list as tracked and, if dirty, in need of
// a /keys/query.
func (t *Tx) TrackUser(userID string, dirty bool) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	_, err := t.tx.Exec(`INSERT INTO tracked_users (user_id, dirty) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET dirty = excluded.dirty`, userID, dirty)
	return err
}

// UntrackUser stops tracking a user.
func (t *Tx) UntrackUser(userID string) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	_, err := t.tx.Exec(`DELETE FROM tracked_users WHERE user_id = ?`, userID)
	return err
}

// TrackedUsers lists tracked users; with dirtyOnly, those needing a query.
func (t *Tx) TrackedUsers(dirtyOnly bool) ([]string, error) {
	rows, err := t.tx.Query(`SELECT user_id FROM tracked_users WHERE dirty OR NOT ? ORDER BY user_id`, dirtyOnly)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
