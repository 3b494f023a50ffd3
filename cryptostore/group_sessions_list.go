package cryptostore

import (
	"fmt"
	"time"
)

// InboundGroupSessions calls fn with every stored inbound group session that
// keep accepts (every one when keep is nil), in (room, session) order, as for
// a key export. keep sees the IDs before a row is unsealed, so rows it
// rejects cost no decryption. The records are fresh copies, not cached, and
// fn must not use t: rows are still being read. An error from fn stops the
// walk and is returned.
func (t *Tx) InboundGroupSessions(keep func(roomID, sessionID string) bool, fn func(*InboundGroupSessionRecord) error) error {
	rows, err := t.tx.Query(`SELECT room_id, session_id, sender_key, signing_key, forwarded, shared_history,
		imported_at, blob FROM inbound_group_sessions ORDER BY room_id, session_id`)
	if err != nil {
		return fmt.Errorf("cryptostore: list inbound group sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		rec := &InboundGroupSessionRecord{}
		var id string
		var imported int64
		var blob []byte
		if err := rows.Scan(&rec.RoomID, &id, &rec.SenderKey, &rec.SigningKey, &rec.Forwarded,
			&rec.SharedHistory, &imported, &blob); err != nil {
			return err
		}
		if keep != nil && !keep(rec.RoomID, id) {
			continue
		}
		key := groupRowKey(rec.RoomID, id)
		sess, err := unpickleInbound(blob, &t.s.key, key)
		if err != nil {
			return corrupt(tableInboundGroupSessions, key, err)
		}
		if sess.ID() != id {
			return corrupt(tableInboundGroupSessions, key, fmt.Errorf("row holds session %s", sess.ID()))
		}
		rec.Session, rec.ImportedAt = sess, time.UnixMilli(imported)
		if err := fn(rec); err != nil {
			return err
		}
	}
	return rows.Err()
}
