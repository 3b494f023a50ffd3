package cryptostore

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestServerKeyCountsRoundTripAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crypto.db")
	s := openAt(t, path, "app")
	update(t, s, func(tx *Tx) error {
		c, err := tx.ServerKeyCounts()
		if err != nil || c != (ServerKeyCounts{OneTimeKeys: -1}) {
			t.Errorf("before any report: %+v, %v", c, err)
		}
		if err := tx.PutServerKeyCounts(ServerKeyCounts{OneTimeKeys: -2}); err == nil {
			t.Error("a negative count was stored")
		}
		return tx.PutServerKeyCounts(ServerKeyCounts{OneTimeKeys: 17, FallbackKeyUsed: true})
	})
	update(t, s, func(tx *Tx) error { return tx.PutServerKeyCounts(ServerKeyCounts{OneTimeKeys: 42}) })
	other := openAt(t, path, "nse")
	update(t, other, func(tx *Tx) error {
		if c, err := tx.ServerKeyCounts(); err != nil || c != (ServerKeyCounts{OneTimeKeys: 42}) {
			t.Errorf("other process reads %+v, %v", c, err)
		}
		return nil
	})
	if err := other.View(t.Context(), "write in view", func(tx *Tx) error {
		return tx.PutServerKeyCounts(ServerKeyCounts{})
	}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write in a view: %v", err)
	}
}
