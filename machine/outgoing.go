package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/cryptostore"
)

// MaxResponseSize bounds the JSON of a homeserver response handed to
// [Machine.MarkRequestAsSent]. The largest is a /keys/query answer: at most
// MaxUsersPerKeysQuery users of at most MaxDevicesPerUser devices whose keys
// take a few hundred bytes each, well under this. Larger input is refused
// before it is parsed.
const MaxResponseSize = 32 << 20

// ErrMalformedResponse is matched by every *ResponseError.
var ErrMalformedResponse = errors.New("machine: malformed response")

// ResponseError reports a homeserver response that MarkRequestAsSent could
// not use: not JSON of the endpoint's shape, or over a limit. The request
// stays pending and the store is unchanged.
type ResponseError struct {
	Type RequestType // the request's type
	ID   string      // the request's ID
	Err  error       // what was wrong
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("machine: malformed %s response to request %s: %v", e.Type, e.ID, e.Err)
}

// Unwrap returns what was wrong.
func (e *ResponseError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMalformedResponse) true.
func (e *ResponseError) Is(target error) bool { return target == ErrMalformedResponse }

// ErrRequestType is matched by every *RequestTypeError.
var ErrRequestType = errors.New("machine: request marked as sent with another type")

// RequestTypeError reports a request marked as sent with a type other than
// the one it was queued with. Nothing is changed.
type RequestTypeError struct {
	ID           string
	Queued, Sent RequestType
}

func (e *RequestTypeError) Error() string {
	return fmt.Sprintf("machine: request %s is a %s request, marked as sent as %s", e.ID, e.Queued, e.Sent)
}

// Is makes errors.Is(err, ErrRequestType) true.
func (e *RequestTypeError) Is(target error) bool { return target == ErrRequestType }

// OutgoingRequests returns the requests to send to the homeserver, oldest
// first, after queuing what is due: a /keys/upload when the device keys were
// never uploaded, the server holds fewer than half of olm.MaxOneTimeKeys
// one-time keys or needs a new fallback key; a /keys/query for tracked users
// whose device lists changed. Keys are generated and stored before the
// request that carries them is returned, and never while an upload is
// pending: a pending request is returned again, with the same ID and body,
// until it is marked as sent, by this process or another one on the same
// store, also after a restart.
//
// Send each request and report its response with [Machine.MarkRequestAsSent].
func (m *Machine) OutgoingRequests(ctx context.Context) ([]*Request, error) {
	var out []*Request
	var plan requestPlan
	err := m.store.View(ctx, "machine: outgoing requests", func(tx *cryptostore.Tx) error {
		pending, err := pendingRequests(tx)
		if err != nil {
			return err
		}
		out = pending
		plan, err = m.planRequests(tx, pending)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("machine: outgoing requests: %w", err)
	}
	if plan.empty() {
		return out, nil
	}
	// Something is due: plan again inside the write transaction (another
	// process may have queued it meanwhile), queue it and list the result.
	// New keys leave the device in the upload, so they are synced first.
	dur := cryptostore.Normal
	if plan.upload != nil {
		dur = cryptostore.Synced
	}
	err = m.store.Update(ctx, "machine: queue requests", dur, func(tx *cryptostore.Tx) error {
		pending, err := pendingRequests(tx)
		if err != nil {
			return err
		}
		plan, err := m.planRequests(tx, pending)
		if err != nil {
			return err
		}
		if plan.upload != nil {
			if err := m.queueKeysUpload(tx, plan.upload); err != nil {
				return err
			}
		}
		if err := m.queueKeysQueries(tx, plan.query); err != nil {
			return err
		}
		out, err = pendingRequests(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("machine: outgoing requests: %w", err)
	}
	return out, nil
}

// requestPlan is the work OutgoingRequests found due.
type requestPlan struct {
	upload *uploadPlan // nil when no upload is due
	query  []string    // users to query, not covered by a pending query
}

func (p requestPlan) empty() bool { return p.upload == nil && len(p.query) == 0 }

// planRequests decides, without writing, which requests are due.
func (m *Machine) planRequests(tx *cryptostore.Tx, pending []*Request) (requestPlan, error) {
	var p requestPlan
	var err error
	if p.upload, err = m.planKeysUpload(tx, pending); err != nil {
		return p, err
	}
	p.query, err = m.usersToQuery(tx, pending)
	return p, err
}

// pendingRequests loads every queued request, oldest first.
func pendingRequests(tx *cryptostore.Tx) ([]*Request, error) {
	stored, err := tx.OutgoingRequests()
	if err != nil {
		return nil, err
	}
	out := make([]*Request, 0, len(stored))
	for _, o := range stored {
		r, err := loadRequest(o)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// MarkRequestAsSent reports the homeserver's response to a request from
// [Machine.OutgoingRequests] (or [Machine.GetMissingSessions]) and removes it
// from the queue, in one transaction with what the response implies:
//   - KeysUpload: exactly the uploaded keys are marked as published, the
//     device keys as shared, and the server's one-time key count recorded;
//   - KeysQuery: the listed users' devices are verified and stored (see
//     [Machine.UpdateTrackedUsers]);
//   - KeysClaim: an Olm session is created with each device whose claimed
//     key carries the device's valid signature;
//   - ToDevice: nothing more.
//
// Marking an ID that is not pending (unknown, or marked already, perhaps by
// another process) does nothing and returns nil. A response that cannot be
// used is a *ResponseError and a request type other than the queued one a
// *RequestTypeError; the request then stays pending and the store is
// unchanged. Single devices or keys that fail verification are skipped and
// logged; they do not fail the response.
func (m *Machine) MarkRequestAsSent(ctx context.Context, id string, typ RequestType, response json.RawMessage) error {
	if len(response) > MaxResponseSize {
		return &ResponseError{Type: typ, ID: id,
			Err: fmt.Errorf("%d bytes, the limit is %d", len(response), MaxResponseSize)}
	}
	// A claim creates Olm sessions, and the session owner may encrypt an
	// m.dummy with one at once (unwedging); that ciphertext leaves the
	// device, so the step is synced.
	dur := cryptostore.Normal
	if typ == RequestKeysClaim {
		dur = cryptostore.Synced
	}
	err := m.store.Update(ctx, "machine: mark request as sent", dur, func(tx *cryptostore.Tx) error {
		r, err := pendingRequest(tx, id)
		if err != nil || r == nil {
			return err
		}
		if r.Type != typ {
			return &RequestTypeError{ID: id, Queued: r.Type, Sent: typ}
		}
		switch typ {
		case RequestKeysUpload:
			err = m.receiveKeysUpload(tx, r, response)
		case RequestKeysQuery:
			err = m.receiveKeysQuery(tx, r, response)
		case RequestKeysClaim:
			err = m.receiveKeysClaim(tx, r, response)
		}
		if err != nil {
			return err
		}
		_, err = tx.RemoveOutgoingRequest(id)
		return err
	})
	if err != nil {
		return fmt.Errorf("machine: mark request %s as sent: %w", id, err)
	}
	return nil
}

// pendingRequest returns the queued request with the ID, or nil.
func pendingRequest(tx *cryptostore.Tx, id string) (*Request, error) {
	stored, err := tx.OutgoingRequests()
	if err != nil {
		return nil, err
	}
	for _, o := range stored {
		if o.ID == id {
			return loadRequest(o)
		}
	}
	return nil, nil
}

// malformedResponse returns a *ResponseError for r.
func malformedResponse(r *Request, format string, args ...any) error {
	return &ResponseError{Type: r.Type, ID: r.ID, Err: fmt.Errorf(format, args...)}
}
