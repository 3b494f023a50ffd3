package cryptostore

import (
	"context"
	"errors"
	"testing"
	"time"
)

// lookUp returns DeviceByCurve25519's device ID for key, "" when it finds
// none, after checking that DeviceIdentity (asked first, so that it is the
// one that misses the cache when the cache holds nothing) finds the same.
func lookUp(t *testing.T, s *Store, key string) string {
	t.Helper()
	var id string
	err := s.View(context.Background(), "look up", func(tx *Tx) error {
		ident, identErr := tx.DeviceIdentity(key)
		d, err := tx.DeviceByCurve25519(key)
		if errors.Is(err, ErrNotFound) {
			if !errors.Is(identErr, ErrNotFound) || ident.Known() {
				t.Errorf("%s: DeviceIdentity found %+v (%v) where DeviceByCurve25519 finds none", key, ident, identErr)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if want := (DeviceIdentity{UserID: d.UserID, DeviceID: d.DeviceID, Ed25519: d.Ed25519}); identErr != nil || ident != want {
			t.Errorf("%s: DeviceIdentity = %+v (%v), want %+v", key, ident, identErr, want)
		}
		id = d.DeviceID
		d.KeysJSON[0] = 'X' // the caller's copy
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Lookups by identity key are cached, the absence of a device included, and
// a device write (here or in another process) is never hidden by the cache:
// a key that moved to another device, a device archived, a device that
// appeared after a lookup found none.
func TestDeviceLookupCacheFollowsWrites(t *testing.T) {
	_, path := tempStore(t)
	a, b := openAt(t, path, "app"), openAt(t, path, "nse")
	put := func(s *Store, id, curve string) {
		update(t, s, func(tx *Tx) error {
			return tx.PutDevice(&Device{UserID: "@u:x", DeviceID: id, Curve25519: curve, Ed25519: "ed" + id,
				KeysJSON: []byte(`{}`), UpdatedAt: time.Now()})
		})
	}
	if got := lookUp(t, a, "K1"); got != "" {
		t.Fatalf("empty store: found %q", got)
	}
	put(a, "D1", "K1")
	if got := lookUp(t, a, "K1"); got != "D1" {
		t.Fatalf("after this process's write: %q, want D1 (the cached absence survived)", got)
	}
	if got := lookUp(t, a, "K1"); got != "D1" {
		t.Fatalf("cached lookup: %q, want D1 (a caller's change reached the cache?)", got)
	}
	put(b, "D1", "K2") // another process moves the device to a new key
	if got := lookUp(t, a, "K1"); got != "" {
		t.Fatalf("after another process's write: %q under the old key", got)
	}
	if got := lookUp(t, a, "K2"); got != "D1" {
		t.Fatalf("after another process's write: %q, want D1", got)
	}
	// A write of this process's own comes next: the cache then holds K2
	// when the transaction that removes its device begins.
	update(t, a, func(tx *Tx) error { return nil })
	if got := lookUp(t, a, "K2"); got != "D1" {
		t.Fatalf("before removal: %q, want D1", got)
	}
	update(t, a, func(tx *Tx) error {
		if _, err := tx.DeviceByCurve25519("K2"); err != nil {
			return err
		}
		if err := tx.RemoveDevice("@u:x", "D1"); err != nil {
			return err
		}
		if _, err := tx.DeviceByCurve25519("K2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the transaction that removed the device still finds it: %v", err)
		}
		if d, err := tx.DeviceIdentity("K2"); !errors.Is(err, ErrNotFound) || d.Known() {
			t.Errorf("the transaction that removed the device still finds its identity: %+v, %v", d, err)
		}
		return nil
	})
	if got := lookUp(t, a, "K2"); got != "" {
		t.Fatalf("after removal: %q", got)
	}
}
