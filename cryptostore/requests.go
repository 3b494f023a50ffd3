package cryptostore

import (
	"fmt"
	"time"
)

// OutgoingRequest is a request waiting to be sent to the homeserver. Its ID
// is stable: a retried request is the same request, and a restarted process
// finds it again.
type OutgoingRequest struct {
	ID        string
	Type      string
	Body      []byte
	CreatedAt time.Time
}

// MaxOutgoingRequests bounds the pending queue. Requests are created by this
// device, at most a few per sync; a queue this long means nothing is being
// sent, and growing it further would only store work that cannot happen.
const MaxOutgoingRequests = 10000

// AddOutgoingRequest queues a request. Adding an ID that is already queued
// is a no-op, so a step that is retried does not duplicate its request.
func (t *Tx) AddOutgoingRequest(r *OutgoingRequest) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	var n int
	if err := t.tx.QueryRow(`SELECT count(*) FROM outgoing_requests`).Scan(&n); err != nil {
		return err
	}
	if n >= MaxOutgoingRequests {
		return fmt.Errorf("cryptostore: %d outgoing requests are pending, the limit is %d", n, MaxOutgoingRequests)
	}
	_, err := t.tx.Exec(`INSERT INTO outgoing_requests (id, type, body, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, r.ID, r.Type, r.Body, r.CreatedAt.UnixMilli())
	return err
}

// OutgoingRequests lists pending requests, oldest first (in the order they
// were added).
func (t *Tx) OutgoingRequests() ([]*OutgoingRequest, error) {
	rows, err := t.tx.Query(`SELECT id, type, body, created_at FROM outgoing_requests ORDER BY created_at, rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*OutgoingRequest
	for rows.Next() {
		r := new(OutgoingRequest)
		var created int64
		if err := rows.Scan(&r.ID, &r.Type, &r.Body, &created); err != nil {
			return nil, err
		}
		r.CreatedAt = time.UnixMilli(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RemoveOutgoingRequest deletes a sent request; it reports whether it was
// pending (a second MarkRequestAsSent for the same ID finds nothing).
func (t *Tx) RemoveOutgoingRequest(id string) (bool, error) {
	if err := t.checkWrite(); err != nil {
		return false, err
	}
	res, err := t.tx.Exec(`DELETE FROM outgoing_requests WHERE id = ?`, id)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}
