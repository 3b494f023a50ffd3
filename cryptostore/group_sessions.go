package cryptostore

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xolm/xolm/megolm"
)

const tableInboundGroupSessions = "inbound_group_sessions"

// InboundGroupSessionRecord is a Megolm session for decrypting a room's
// events, with what is known of where it came from.
type InboundGroupSessionRecord struct {
	RoomID string
	// SenderKey is the Curve25519 key of the device the key came from over Olm.
	SenderKey string
	// SigningKey is the Ed25519 key the sender claimed in the m.room_key event.
	SigningKey string
	Session    *megolm.InboundGroupSession
	// Forwarded is true for keys received through m.forwarded_room_key or an
	// import, not directly from the session's creator.
	Forwarded     bool
	SharedHistory bool
	ImportedAt    time.Time
}

func (r *InboundGroupSessionRecord) clone() *InboundGroupSessionRecord {
	c := *r
	c.Session = r.Session.Clone()
	return &c
}

func groupRowKey(roomID, sessionID string) string { return roomID + "\x00" + sessionID }

// InboundGroupSession returns a copy of the session, or ErrNotFound.
func (t *Tx) InboundGroupSession(roomID, sessionID string) (*InboundGroupSessionRecord, error) {
	k := groupKey{roomID, sessionID}
	if rec, ok := t.s.cache.groupSessions.get(k, t.gen); ok && !t.changed(cacheEntry{tableInboundGroupSessions, k.roomID, k.sessionID}) {
		return rec.clone(), nil
	}
	rec, err := t.loadInboundGroupSession(roomID, sessionID)
	if err != nil {
		return nil, err
	}
	if t.s.cache.disabled {
		return rec, nil // nobody else holds it
	}
	t.cacheRead(func() { t.s.cache.groupSessions.put(k, rec, t.gen) })
	return rec.clone(), nil
}

func (t *Tx) loadInboundGroupSession(roomID, sessionID string) (*InboundGroupSessionRecord, error) {
	rec := &InboundGroupSessionRecord{RoomID: roomID}
	var blob []byte
	var imported int64
	err := t.tx.QueryRow(`SELECT sender_key, signing_key, forwarded, shared_history, imported_at, blob
		FROM inbound_group_sessions WHERE room_id = ? AND session_id = ?`, roomID, sessionID).
		Scan(&rec.SenderKey, &rec.SigningKey, &rec.Forwarded, &rec.SharedHistory, &imported, &blob)
	if err != nil {
		return nil, noRows(err)
	}
	key := groupRowKey(roomID, sessionID)
	sess, err := unpickleInbound(blob, &t.s.key, key)
	if err != nil {
		return nil, corrupt(tableInboundGroupSessions, key, err)
	}
	if sess.ID() != sessionID {
		return nil, corrupt(tableInboundGroupSessions, key, fmt.Errorf("row holds session %s", sess.ID()))
	}
	rec.Session, rec.ImportedAt = sess, time.UnixMilli(imported)
	return rec, nil
}

// PutInboundGroupSession stores rec, keeping the better copy (DESIGN.md
// invariant 10): if the room already has this session, the two are merged
// when connected (lower first known index, the further ratchet), and a copy
// that is no better is not stored. A stored copy that is replaced is
// archived. It reports whether the store changed.
func (t *Tx) PutInboundGroupSession(rec *InboundGroupSessionRecord) (bool, error) {
	if err := t.checkWrite(); err != nil {
		return false, err
	}
	id := rec.Session.ID()
	old, err := t.loadInboundGroupSession(rec.RoomID, id)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return false, err
	default:
		next, changed := betterCopy(old, rec)
		if !changed {
			return false, nil
		}
		if err := t.archiveInboundGroupSession(rec.RoomID, id); err != nil {
			return false, err
		}
		rec = next
	}
	return true, t.writeInboundGroupSession(rec)
}

// betterCopy decides what to keep when a copy of a stored session arrives.
// Unconnected copies (same ID, different ratchet: a forgery or corruption)
// never replace the stored one.
func betterCopy(old, incoming *InboundGroupSessionRecord) (*InboundGroupSessionRecord, bool) {
	merged, ok := old.Session.Merge(incoming.Session)
	if !ok {
		return nil, false
	}
	if merged.Compare(old.Session) != megolm.Better && merged.SigningKeyVerified() == old.Session.SigningKeyVerified() {
		return nil, false
	}
	next := old.clone()
	next.Session = merged
	// Provenance follows the copy that contributed the initial ratchet.
	if incoming.Session.Compare(old.Session) == megolm.Better {
		next.SenderKey, next.SigningKey = incoming.SenderKey, incoming.SigningKey
		next.Forwarded, next.SharedHistory = incoming.Forwarded, incoming.SharedHistory
		next.ImportedAt = incoming.ImportedAt
	}
	return next, true
}

// UpdateInboundGroupSession writes back a session after a decrypt advanced
// its latest ratchet. The session must already be stored: if it is not,
// nothing is written and the error is ErrNotFound.
func (t *Tx) UpdateInboundGroupSession(rec *InboundGroupSessionRecord) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	id := rec.Session.ID()
	key := groupRowKey(rec.RoomID, id)
	blob := rec.Session.Pickle(&t.s.key, rowAD(tableInboundGroupSessions, key))
	var res sql.Result
	var err error
	if t.onlySessionMoved(rec, groupKey{rec.RoomID, id}) {
		res, err = t.tx.Exec(`UPDATE inbound_group_sessions SET blob = ? WHERE room_id = ? AND session_id = ?`,
			blob, rec.RoomID, id)
	} else {
		res, err = t.tx.Exec(`UPDATE inbound_group_sessions SET sender_key = ?, signing_key = ?,
			first_known_index = ?, forwarded = ?, shared_history = ?, imported_at = ?, blob = ?
			WHERE room_id = ? AND session_id = ?`,
			rec.SenderKey, rec.SigningKey, rec.Session.FirstKnownIndex(), rec.Forwarded, rec.SharedHistory,
			rec.ImportedAt.UnixMilli(), blob, rec.RoomID, id)
	}
	if err != nil {
		return fmt.Errorf("cryptostore: update inbound group session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cryptostore: update inbound group session: %w", err)
	} else if n == 0 {
		return fmt.Errorf("cryptostore: update inbound group session %s: %w", id, ErrNotFound)
	}
	t.publishInboundGroupSession(rec, id)
	return nil
}

// onlySessionMoved reports whether the stored row differs from rec in its
// blob alone, as the cache knows the row: a decrypt changes nothing else.
// Without a current cache entry it reports false, and the whole row is
// written.
func (t *Tx) onlySessionMoved(rec *InboundGroupSessionRecord, k groupKey) bool {
	c, ok := t.s.cache.groupSessions.get(k, t.gen)
	return ok && !t.changed(cacheEntry{tableInboundGroupSessions, k.roomID, k.sessionID}) &&
		c.SenderKey == rec.SenderKey && c.SigningKey == rec.SigningKey &&
		c.Session.FirstKnownIndex() == rec.Session.FirstKnownIndex() && c.Forwarded == rec.Forwarded &&
		c.SharedHistory == rec.SharedHistory && c.ImportedAt.UnixMilli() == rec.ImportedAt.UnixMilli()
}

func (t *Tx) writeInboundGroupSession(rec *InboundGroupSessionRecord) error {
	id := rec.Session.ID()
	key := groupRowKey(rec.RoomID, id)
	blob := rec.Session.Pickle(&t.s.key, rowAD(tableInboundGroupSessions, key))
	_, err := t.tx.Exec(`INSERT INTO inbound_group_sessions
		(room_id, session_id, sender_key, signing_key, first_known_index, forwarded, shared_history, imported_at, blob)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, session_id) DO UPDATE SET
		sender_key = excluded.sender_key, signing_key = excluded.signing_key,
		first_known_index = excluded.first_known_index, forwarded = excluded.forwarded,
		shared_history = excluded.shared_history, imported_at = excluded.imported_at, blob = excluded.blob`,
		rec.RoomID, id, rec.SenderKey, rec.SigningKey, rec.Session.FirstKnownIndex(), rec.Forwarded,
		rec.SharedHistory, rec.ImportedAt.UnixMilli(), blob)
	if err != nil {
		return fmt.Errorf("cryptostore: put inbound group session: %w", err)
	}
	t.publishInboundGroupSession(rec, id)
	return nil
}

// publishInboundGroupSession records a written session for the rest of the
// transaction and, after the commit, the cache.
func (t *Tx) publishInboundGroupSession(rec *InboundGroupSessionRecord, id string) {
	stored := rec.clone()
	t.wrote(cacheEntry{tableInboundGroupSessions, rec.RoomID, id})
	t.afterCommit(func() { t.s.cache.groupSessions.put(groupKey{rec.RoomID, id}, stored, t.gen) })
}

func (t *Tx) archiveInboundGroupSession(roomID, sessionID string) error {
	_, err := t.tx.Exec(`INSERT INTO archived_inbound_group_sessions
		(room_id, session_id, sender_key, signing_key, first_known_index, forwarded, shared_history, imported_at, blob, archived_at)
		SELECT room_id, session_id, sender_key, signing_key, first_known_index, forwarded, shared_history, imported_at, blob, ?
		FROM inbound_group_sessions WHERE room_id = ? AND session_id = ?`, t.s.nowMillis(), roomID, sessionID)
	if err != nil {
		return fmt.Errorf("cryptostore: archive inbound group session: %w", err)
	}
	return nil
}

// CountInboundGroupSessions returns how many sessions are stored.
func (t *Tx) CountInboundGroupSessions() (int, error) {
	var n int
	err := t.tx.QueryRow(`SELECT count(*) FROM inbound_group_sessions`).Scan(&n)
	return n, err
}

func unpickleInbound(blob []byte, key *[32]byte, rowKey string) (*megolm.InboundGroupSession, error) {
	return megolm.UnpickleInboundGroupSession(blob, key, rowAD(tableInboundGroupSessions, rowKey))
}
