package cryptostore

import (
	"fmt"
	"time"
)

// LastRun returns when a maintenance task last ran to completion on this
// store (by any process), or the zero time.
func (t *Tx) LastRun(task string) (time.Time, error) {
	var at int64
	err := t.tx.QueryRow(`SELECT last_run_at FROM maintenance WHERE task = ?`, task).Scan(&at)
	if err := noRows(err); err == ErrNotFound {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("cryptostore: last run of %q: %w", task, err)
	}
	return time.UnixMilli(at), nil
}

// SetLastRun records that a maintenance task ran to completion now.
func (t *Tx) SetLastRun(task string) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	_, err := t.tx.Exec(`INSERT INTO maintenance (task, last_run_at) VALUES (?, ?)
		ON CONFLICT (task) DO UPDATE SET last_run_at = excluded.last_run_at`, task, t.s.nowMillis())
	if err != nil {
		return fmt.Errorf("cryptostore: record run of %q: %w", task, err)
	}
	return nil
}
