package cryptostore

import (
	"fmt"
	"time"

	"github.com/xolm/xolm/megolm"
)

const tableOutboundGroupSessions = "outbound_group_sessions"

// OutboundGroupSessionRecord is the Megolm session this device encrypts a
// room's events with.
type OutboundGroupSessionRecord struct {
	RoomID       string
	Session      *megolm.OutboundGroupSession
	CreatedAt    time.Time
	MessageCount int
}

func (r *OutboundGroupSessionRecord) clone() *OutboundGroupSessionRecord {
	c := *r
	c.Session = r.Session.Clone()
	return &c
}

// OutboundGroupSession returns a copy of the room's outbound session, or
// ErrNotFound.
func (t *Tx) OutboundGroupSession(roomID string) (*OutboundGroupSessionRecord, error) {
	if rec, ok := t.s.cache.outbound.get(roomID, t.gen); ok && !t.changed(cacheEntry{table: tableOutboundGroupSessions, key: roomID}) {
		return rec.clone(), nil
	}
	rec := &OutboundGroupSessionRecord{RoomID: roomID}
	var id string
	var created int64
	var blob []byte
	err := t.tx.QueryRow(`SELECT session_id, created_at, message_count, blob
		FROM outbound_group_sessions WHERE room_id = ?`, roomID).Scan(&id, &created, &rec.MessageCount, &blob)
	if err != nil {
		return nil, noRows(err)
	}
	sess, err := megolm.UnpickleOutboundGroupSession(blob, &t.s.key, rowAD(tableOutboundGroupSessions, roomID))
	if err != nil {
		return nil, corrupt(tableOutboundGroupSessions, roomID, err)
	}
	if sess.ID() != id {
		return nil, corrupt(tableOutboundGroupSessions, roomID, fmt.Errorf("row holds session %s", sess.ID()))
	}
	rec.Session, rec.CreatedAt = sess, time.UnixMilli(created)
	t.cacheRead(func() { t.s.cache.outbound.put(roomID, rec, t.gen) })
	return rec.clone(), nil
}

// PutOutboundGroupSession stores the room's outbound session, replacing any
// previous one (a rotated session's shares are deleted with it). Commit it
// with Synced durability before its ciphertext or session key leaves the
// device (DESIGN.md invariant 6).
func (t *Tx) PutOutboundGroupSession(rec *OutboundGroupSessionRecord) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	blob := rec.Session.Pickle(&t.s.key, rowAD(tableOutboundGroupSessions, rec.RoomID))
	var prev string
	err := t.tx.QueryRow(`SELECT session_id FROM outbound_group_sessions WHERE room_id = ?`, rec.RoomID).Scan(&prev)
	if err == nil && prev != rec.Session.ID() {
		if _, err := t.tx.Exec(`DELETE FROM outbound_group_shares WHERE session_id = ?`, prev); err != nil {
			return err
		}
	}
	_, err = t.tx.Exec(`INSERT INTO outbound_group_sessions (room_id, session_id, created_at, message_count, blob)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id) DO UPDATE SET session_id = excluded.session_id,
		created_at = excluded.created_at, message_count = excluded.message_count, blob = excluded.blob`,
		rec.RoomID, rec.Session.ID(), rec.CreatedAt.UnixMilli(), rec.MessageCount, blob)
	if err != nil {
		return fmt.Errorf("cryptostore: put outbound group session: %w", err)
	}
	c := rec.clone()
	t.wrote(cacheEntry{table: tableOutboundGroupSessions, key: rec.RoomID})
	t.afterCommit(func() { t.s.cache.outbound.put(rec.RoomID, c, t.gen) })
	return nil
}

// DeleteOutboundGroupSession discards the room's outbound session (to force
// rotation). Its secrets are erased, not archived: it can only encrypt.
func (t *Tx) DeleteOutboundGroupSession(roomID string) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	if _, err := t.tx.Exec(`DELETE FROM outbound_group_shares WHERE session_id IN
		(SELECT session_id FROM outbound_group_sessions WHERE room_id = ?)`, roomID); err != nil {
		return err
	}
	if _, err := t.tx.Exec(`DELETE FROM outbound_group_sessions WHERE room_id = ?`, roomID); err != nil {
		return err
	}
	t.wrote(cacheEntry{table: tableOutboundGroupSessions, key: roomID})
	t.afterCommit(func() { t.s.cache.outbound.remove(roomID) })
	return nil
}

// Share is one device an outbound session was shared with, and the index
// it was shared at.
type Share struct {
	UserID, DeviceID string
	MessageIndex     uint32
}

// AddShares records that sessionID was shared with the devices.
func (t *Tx) AddShares(sessionID string, shares []Share) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	for _, sh := range shares {
		if _, err := t.tx.Exec(`INSERT INTO outbound_group_shares (session_id, user_id, device_id, message_index)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, sessionID, sh.UserID, sh.DeviceID, sh.MessageIndex); err != nil {
			return fmt.Errorf("cryptostore: add share: %w", err)
		}
	}
	return nil
}

// Shares lists the devices sessionID was shared with.
func (t *Tx) Shares(sessionID string) ([]Share, error) {
	rows, err := t.tx.Query(`SELECT user_id, device_id, message_index FROM outbound_group_shares
		WHERE session_id = ? ORDER BY user_id, device_id`, sessionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Share
	for rows.Next() {
		var sh Share
		if err := rows.Scan(&sh.UserID, &sh.DeviceID, &sh.MessageIndex); err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}
