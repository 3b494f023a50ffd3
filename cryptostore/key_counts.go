package cryptostore

import (
	"database/sql"
	"errors"
	"fmt"
)

// ServerKeyCounts is what the homeserver last said about this device's
// published keys, in a sync response (device_one_time_keys_count,
// device_unused_fallback_key_types) or a /keys/upload response
// (one_time_key_counts). The machine decides from it how many one-time keys
// to generate and whether a new fallback key is due.
type ServerKeyCounts struct {
	// OneTimeKeys is the number of signed_curve25519 one-time keys the server
	// holds for this device, or -1 when it has never said.
	OneTimeKeys int
	// FallbackKeyUsed is true when the server reported that it holds no
	// unused signed_curve25519 fallback key.
	FallbackKeyUsed bool
}

// ServerKeyCounts returns the counts last stored, or {OneTimeKeys: -1} when
// none were.
func (t *Tx) ServerKeyCounts() (ServerKeyCounts, error) {
	var c ServerKeyCounts
	err := t.tx.QueryRow(`SELECT one_time_keys, fallback_key_used FROM server_key_counts WHERE id = 1`).
		Scan(&c.OneTimeKeys, &c.FallbackKeyUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return ServerKeyCounts{OneTimeKeys: -1}, nil
	}
	if err != nil {
		return ServerKeyCounts{}, fmt.Errorf("cryptostore: server key counts: %w", err)
	}
	return c, nil
}

// PutServerKeyCounts stores the counts, replacing the previous ones.
func (t *Tx) PutServerKeyCounts(c ServerKeyCounts) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	if c.OneTimeKeys < -1 {
		return fmt.Errorf("cryptostore: put server key counts: %d one-time keys", c.OneTimeKeys)
	}
	_, err := t.tx.Exec(`INSERT INTO server_key_counts (id, one_time_keys, fallback_key_used) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET one_time_keys = excluded.one_time_keys,
		fallback_key_used = excluded.fallback_key_used`, c.OneTimeKeys, c.FallbackKeyUsed)
	if err != nil {
		return fmt.Errorf("cryptostore: put server key counts: %w", err)
	}
	return nil
}
