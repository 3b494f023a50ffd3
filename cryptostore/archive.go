package cryptostore

import (
	"fmt"
	"time"
)

// Archives hold durable state moved aside rather than deleted (DESIGN.md
// invariant 9): pruned Olm sessions, superseded inbound group sessions and
// removed devices, each with the time it was archived. Restoring never
// overwrites a newer row. Spent secrets (used one-time keys, message keys)
// are erased instead: with secure_delete their bytes are overwritten.

func (t *Tx) archiveOlmSession(sessionID string) error {
	if _, err := t.tx.Exec(`INSERT INTO archived_olm_sessions
		(session_id, sender_key, created_at, last_used_at, blob, archived_at)
		SELECT session_id, sender_key, created_at, last_used_at, blob, ? FROM olm_sessions WHERE session_id = ?`,
		t.s.nowMillis(), sessionID); err != nil {
		return fmt.Errorf("cryptostore: archive olm session: %w", err)
	}
	if _, err := t.tx.Exec(`DELETE FROM olm_sessions WHERE session_id = ?`, sessionID); err != nil {
		return fmt.Errorf("cryptostore: archive olm session: %w", err)
	}
	return nil
}

// ArchiveOlmSession moves a session to the archive.
func (t *Tx) ArchiveOlmSession(senderKey, sessionID string) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	if err := t.archiveOlmSession(sessionID); err != nil {
		return err
	}
	t.olmCounts.Delete(senderKey)
	t.wrote(cacheEntry{table: tableOlmSessions, key: senderKey})
	t.afterCommit(func() { t.s.cache.olmSessions.remove(senderKey) })
	return nil
}

// RestoreOlmSession moves an archived session back, unless a row with its ID
// is live again and at least as recently used, or unless it would not be
// among the sender's MaxOlmSessionsPerSender most recently used sessions
// (it would be archived again at once). A restore that adds a row keeps the
// sender within the limit: the least recently used sessions beyond it are
// archived, as for a new session. It reports whether it restored; when it
// did not, nothing changed.
func (t *Tx) RestoreOlmSession(sessionID string) (bool, error) {
	if err := t.checkWrite(); err != nil {
		return false, err
	}
	// The most recently archived copy.
	var senderKey string
	var archived, lastUsed int64
	if err := t.tx.QueryRow(`SELECT rowid, sender_key, last_used_at FROM archived_olm_sessions WHERE session_id = ?
		ORDER BY rowid DESC LIMIT 1`, sessionID).Scan(&archived, &senderKey, &lastUsed); err != nil {
		return false, noRows(err)
	}
	var live, ahead int
	if err := t.tx.QueryRow(`SELECT count(*) FROM olm_sessions WHERE session_id = ?`, sessionID).Scan(&live); err != nil {
		return false, err
	}
	if live == 0 {
		// The sessions that would rank before it, in the order OlmSessions
		// returns them.
		if err := t.tx.QueryRow(`SELECT count(*) FROM olm_sessions WHERE sender_key = ?
			AND (last_used_at > ? OR (last_used_at = ? AND session_id < ?))`,
			senderKey, lastUsed, lastUsed, sessionID).Scan(&ahead); err != nil {
			return false, err
		}
		if ahead >= MaxOlmSessionsPerSender {
			return false, nil
		}
	}
	res, err := t.tx.Exec(`INSERT INTO olm_sessions (session_id, sender_key, created_at, last_used_at, blob)
		SELECT session_id, sender_key, created_at, last_used_at, blob FROM archived_olm_sessions WHERE rowid = ?
		ON CONFLICT (session_id) DO UPDATE SET last_used_at = excluded.last_used_at, blob = excluded.blob
		WHERE excluded.last_used_at > olm_sessions.last_used_at`, archived)
	if err != nil {
		return false, fmt.Errorf("cryptostore: restore olm session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if _, err := t.tx.Exec(`DELETE FROM archived_olm_sessions WHERE rowid = ?`, archived); err != nil {
		return false, err
	}
	if live == 0 {
		if _, err := t.pruneOlmSessions(senderKey); err != nil {
			return false, err
		}
	}
	t.olmCounts.Delete(senderKey)
	t.wrote(cacheEntry{table: tableOlmSessions, key: senderKey})
	t.afterCommit(func() { t.s.cache.olmSessions.remove(senderKey) })
	return true, nil
}

// RestoreInboundGroupSession brings back the most recently archived copy of a
// session if no live copy exists, or if the archived copy is better than the
// live one (merged with it when they are connected). It reports whether the
// live row changed.
func (t *Tx) RestoreInboundGroupSession(roomID, sessionID string) (bool, error) {
	if err := t.checkWrite(); err != nil {
		return false, err
	}
	arch := &InboundGroupSessionRecord{RoomID: roomID}
	var blob []byte
	var imported, archivedAt int64
	err := t.tx.QueryRow(`SELECT sender_key, signing_key, forwarded, shared_history, imported_at, blob, archived_at
		FROM archived_inbound_group_sessions WHERE room_id = ? AND session_id = ? ORDER BY rowid DESC LIMIT 1`,
		roomID, sessionID).Scan(&arch.SenderKey, &arch.SigningKey, &arch.Forwarded, &arch.SharedHistory, &imported, &blob, &archivedAt)
	if err != nil {
		return false, noRows(err)
	}
	key := groupRowKey(roomID, sessionID)
	arch.ImportedAt = time.UnixMilli(imported)
	// The archived blob was sealed for the live table's row key.
	arch.Session, err = unpickleInbound(blob, &t.s.key, key)
	if err != nil {
		return false, corrupt("archived_inbound_group_sessions", key, err)
	}
	return t.PutInboundGroupSession(arch)
}
