package cryptostore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xolm/xolm/olm"
)

const tableOlmSessions = "olm_sessions"

// MaxOlmSessionsPerSender bounds the Olm sessions kept with one peer device;
// the least recently used beyond it are archived. The spec asks for at least
// 4; a peer that keeps starting sessions cannot grow the store without bound.
const MaxOlmSessionsPerSender = 10

// OlmSessionRecord is an Olm session with the peer device whose Curve25519
// identity key is SenderKey.
type OlmSessionRecord struct {
	SenderKey  string
	Session    *olm.Session
	CreatedAt  time.Time
	LastUsedAt time.Time
}

func (r *OlmSessionRecord) clone() *OlmSessionRecord {
	c := *r
	c.Session = r.Session.Clone()
	return &c
}

// OlmSessions returns the sessions with senderKey, most recently used first.
// They are copies: change them, then PutOlmSession.
func (t *Tx) OlmSessions(senderKey string) ([]*OlmSessionRecord, error) {
	if recs, ok := t.s.cache.olmSessions.get(senderKey, t.gen); ok && !t.changed(cacheEntry{table: tableOlmSessions, key: senderKey}) {
		t.countOlmSessions(senderKey, len(recs))
		return cloneRecords(recs), nil
	}
	recs, err := t.loadOlmSessions(senderKey)
	if err != nil {
		return nil, err
	}
	t.countOlmSessions(senderKey, len(recs))
	if t.s.cache.disabled {
		return recs, nil // nobody else holds these
	}
	t.cacheRead(func() { t.s.cache.olmSessions.put(senderKey, recs, t.gen) })
	return cloneRecords(recs), nil
}

func cloneRecords(recs []*OlmSessionRecord) []*OlmSessionRecord {
	out := make([]*OlmSessionRecord, len(recs))
	for i, r := range recs {
		out[i] = r.clone()
	}
	return out
}

func (t *Tx) loadOlmSessions(senderKey string) ([]*OlmSessionRecord, error) {
	rows, err := t.tx.Query(`SELECT session_id, created_at, last_used_at, blob FROM olm_sessions
		WHERE sender_key = ? ORDER BY last_used_at DESC, session_id`, senderKey)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var recs []*OlmSessionRecord
	for rows.Next() {
		var id string
		var created, used int64
		var blob []byte
		if err := rows.Scan(&id, &created, &used, &blob); err != nil {
			return nil, err
		}
		sess, err := olm.UnpickleSession(blob, &t.s.key, rowAD(tableOlmSessions, id))
		if err != nil {
			return nil, corrupt(tableOlmSessions, id, err)
		}
		if sess.ID() != id {
			return nil, corrupt(tableOlmSessions, id, fmt.Errorf("row holds session %s", sess.ID()))
		}
		recs = append(recs, &OlmSessionRecord{
			SenderKey: senderKey, Session: sess,
			CreatedAt: time.UnixMilli(created), LastUsedAt: time.UnixMilli(used),
		})
	}
	return recs, rows.Err()
}

// PutOlmSession stores rec (inserting or replacing the session with its ID).
// Beyond MaxOlmSessionsPerSender, the least recently used sessions of the
// sender are archived in the same transaction.
func (t *Tx) PutOlmSession(rec *OlmSessionRecord) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	id := rec.Session.ID()
	blob := rec.Session.Pickle(&t.s.key, rowAD(tableOlmSessions, id))
	// An advanced session replaces its row and leaves the sender's count as
	// it was; only a new row can take the sender past the limit.
	res, err := t.tx.Exec(`UPDATE olm_sessions SET last_used_at = ?, blob = ? WHERE session_id = ?`,
		rec.LastUsedAt.UnixMilli(), blob, id)
	if err != nil {
		return fmt.Errorf("cryptostore: put olm session: %w", err)
	}
	var pruned []string
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cryptostore: put olm session: %w", err)
	} else if n == 0 {
		if _, err := t.tx.Exec(`INSERT INTO olm_sessions (session_id, sender_key, created_at, last_used_at, blob)
			VALUES (?, ?, ?, ?, ?)`,
			id, rec.SenderKey, rec.CreatedAt.UnixMilli(), rec.LastUsedAt.UnixMilli(), blob); err != nil {
			return fmt.Errorf("cryptostore: put olm session: %w", err)
		}
		if n, ok := t.olmCounts.Get(rec.SenderKey); ok && n < MaxOlmSessionsPerSender {
			t.olmCounts.Set(rec.SenderKey, n+1) // still within the limit: nothing to prune
		} else if pruned, err = t.pruneOlmSessions(rec.SenderKey); err != nil {
			return err
		}
	}
	stored := rec.clone()
	t.wrote(cacheEntry{table: tableOlmSessions, key: rec.SenderKey})
	t.afterCommit(func() { t.s.cache.publishOlmSession(stored, pruned, t.gen) })
	return nil
}

// countOlmSessions records how many sessions the sender has in the
// transaction's view.
func (t *Tx) countOlmSessions(senderKey string, n int) {
	t.olmCounts.Set(senderKey, n)
}

// pruneOlmSessions archives the sender's sessions beyond the limit.
func (t *Tx) pruneOlmSessions(senderKey string) ([]string, error) {
	t.olmCounts.Delete(senderKey)
	rows, err := t.tx.Query(`SELECT session_id FROM olm_sessions WHERE sender_key = ?
		ORDER BY last_used_at DESC, session_id LIMIT -1 OFFSET ?`, senderKey, MaxOlmSessionsPerSender)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if err := t.archiveOlmSession(id); err != nil {
			return nil, err
		}
	}
	return ids, rows.Err()
}

// publishOlmSession updates a cached sender list after a commit, keeping the
// most-recently-used order. A sender not cached stays uncached: the next read
// loads the full list.
func (c *cache) publishOlmSession(rec *OlmSessionRecord, pruned []string, gen uint64) {
	recs, ok := c.olmSessions.get(rec.SenderKey, gen)
	if !ok {
		return
	}
	next := make([]*OlmSessionRecord, 0, len(recs)+1)
	if !slices.Contains(pruned, rec.Session.ID()) { // it may be older than the ones kept
		next = append(next, rec)
	}
	for _, r := range recs {
		if r.Session.ID() != rec.Session.ID() && !slices.Contains(pruned, r.Session.ID()) {
			next = append(next, r)
		}
	}
	slices.SortFunc(next, func(a, b *OlmSessionRecord) int {
		if c := b.LastUsedAt.Compare(a.LastUsedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Session.ID(), b.Session.ID())
	})
	c.olmSessions.put(rec.SenderKey, next, gen)
}
