package cryptostore

import (
	"errors"
	"fmt"
)

// ErrReplay reports a Megolm message index that was already used by another
// event: a replayed or forged room event (DESIGN.md invariant 8).
var ErrReplay = errors.New("cryptostore: megolm message index reused by another event")

// ReplayError carries the event that first used the index.
type ReplayError struct {
	SessionID  string
	Index      uint32
	FirstEvent string
	FirstTS    int64
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("cryptostore: megolm session %s index %d was already used by event %s", e.SessionID, e.Index, e.FirstEvent)
}

// Is makes errors.Is(err, ErrReplay) true.
func (e *ReplayError) Is(target error) bool { return target == ErrReplay }

// RecordMegolmIndex records that eventID (sent at originTS) used index of the
// session. The same event again is fine (a re-decryption); another event at
// the same index is a *ReplayError. One row per index keeps the check a
// primary-key lookup, O(log n) however far the session has come.
func (t *Tx) RecordMegolmIndex(sessionID string, index uint32, eventID string, originTS int64) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	var first string
	var ts int64
	err := t.tx.QueryRow(`INSERT INTO megolm_replay (session_id, message_index, event_id, origin_ts)
		VALUES (?, ?, ?, ?) ON CONFLICT (session_id, message_index) DO UPDATE SET event_id = event_id
		RETURNING event_id, origin_ts`, sessionID, index, eventID, originTS).Scan(&first, &ts)
	if err != nil {
		return fmt.Errorf("cryptostore: record megolm index: %w", err)
	}
	if first != eventID {
		return &ReplayError{SessionID: sessionID, Index: index, FirstEvent: first, FirstTS: ts}
	}
	return nil
}
