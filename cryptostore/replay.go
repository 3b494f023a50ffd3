package cryptostore

import (
	"errors"
	"fmt"
	"strings"
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
// primary-key lookup, O(log n) however far the session has come. A new
// index, the common case, costs one insert; only an index already recorded
// is read back.
func (t *Tx) RecordMegolmIndex(sessionID string, index uint32, eventID string, originTS int64) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	res, err := t.tx.Exec(`INSERT INTO megolm_replay (session_id, message_index, event_id, origin_ts)
		VALUES (?, ?, ?, ?) ON CONFLICT (session_id, message_index) DO NOTHING`, sessionID, index, eventID, originTS)
	if err != nil {
		return fmt.Errorf("cryptostore: record megolm index: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cryptostore: record megolm index: %w", err)
	} else if n == 1 {
		return nil
	}
	var first string
	var ts int64
	err = t.tx.QueryRow(`SELECT event_id, origin_ts FROM megolm_replay WHERE session_id = ? AND message_index = ?`,
		sessionID, index).Scan(&first, &ts)
	if err != nil {
		return fmt.Errorf("cryptostore: record megolm index: %w", err)
	}
	if first != eventID {
		return &ReplayError{SessionID: sessionID, Index: index, FirstEvent: first, FirstTS: ts}
	}
	return nil
}

// MegolmIndex names one message index of a Megolm session.
type MegolmIndex struct {
	SessionID string
	Index     uint32
}

// MegolmIndexUse is the event that used a message index, as
// [Tx.RecordMegolmIndex] records it.
type MegolmIndexUse struct {
	MegolmIndex
	EventID  string
	OriginTS int64
}

// megolmUsesSQL and addMegolmUsesSQL hold the statements for each chunk
// size.
var megolmUsesSQL, addMegolmUsesSQL = megolmIndexStatements()

func megolmIndexStatements() (uses, add map[int]string) {
	uses, add = make(map[int]string), make(map[int]string)
	for _, n := range batchChunks {
		uses[n] = `SELECT session_id, message_index, event_id, origin_ts FROM megolm_replay
			WHERE (session_id, message_index) IN (VALUES (?, ?)` + strings.Repeat(", (?, ?)", n-1) + `)`
		add[n] = `INSERT INTO megolm_replay (session_id, message_index, event_id, origin_ts) VALUES (?, ?, ?, ?)` +
			strings.Repeat(", (?, ?, ?, ?)", n-1) + ` ON CONFLICT DO NOTHING`
	}
	return uses, add
}

// MegolmIndexUses returns the recorded use of each of the indexes that has
// one, in one statement per 100 indexes (a few for a number that is not a
// chunk size). With [Tx.AddMegolmIndexUses] it is the batch form of
// [Tx.RecordMegolmIndex]: an index found here with another event is a
// replay.
func (t *Tx) MegolmIndexUses(indexes []MegolmIndex) (map[MegolmIndex]MegolmIndexUse, error) {
	found := make(map[MegolmIndex]MegolmIndexUse)
	for len(indexes) > 0 {
		n := batchChunk(len(indexes))
		args := make([]any, 0, 2*n)
		for _, ix := range indexes[:n] {
			args = append(args, ix.SessionID, ix.Index)
		}
		indexes = indexes[n:]
		rows, err := t.tx.Query(megolmUsesSQL[n], args...)
		if err != nil {
			return nil, fmt.Errorf("cryptostore: megolm index uses: %w", err)
		}
		for rows.Next() {
			var u MegolmIndexUse
			if err := rows.Scan(&u.SessionID, &u.Index, &u.EventID, &u.OriginTS); err != nil {
				rows.Close()
				return nil, err
			}
			found[u.MegolmIndex] = u
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// AddMegolmIndexUses records uses of indexes that have none, in one
// statement per 100. It does not check for replays: the caller checked each
// index with [Tx.MegolmIndexUses] in the same transaction. A use of an index
// that has one already is ignored, never replaces it.
func (t *Tx) AddMegolmIndexUses(uses []MegolmIndexUse) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	for len(uses) > 0 {
		n := batchChunk(len(uses))
		args := make([]any, 0, 4*n)
		for _, u := range uses[:n] {
			args = append(args, u.SessionID, u.Index, u.EventID, u.OriginTS)
		}
		uses = uses[n:]
		if _, err := t.tx.Exec(addMegolmUsesSQL[n], args...); err != nil {
			return fmt.Errorf("cryptostore: add megolm index uses: %w", err)
		}
	}
	return nil
}
