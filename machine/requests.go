package machine

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/xolm/xolm/cryptostore"
)

// RequestType says which endpoint a [Request] is for.
type RequestType string

// Request types, named as matrix-sdk-crypto names them.
const (
	RequestKeysUpload RequestType = "KeysUpload" // POST /_matrix/client/v3/keys/upload
	RequestKeysQuery  RequestType = "KeysQuery"  // POST /_matrix/client/v3/keys/query
	RequestKeysClaim  RequestType = "KeysClaim"  // POST /_matrix/client/v3/keys/claim
	RequestToDevice   RequestType = "ToDevice"   // PUT /_matrix/client/v3/sendToDevice/{EventType}/{ID}
)

// Request is an HTTP request for the client to send. Its ID is stable: the
// same pending request is returned again until it is marked as sent, also
// after a restart, and a retried request must be sent with the same ID (for
// ToDevice it is the transaction ID, so the server drops a duplicate).
type Request struct {
	ID   string
	Type RequestType
	// EventType is the to-device event type, for ToDevice requests.
	EventType string
	// Body is the JSON request body.
	Body json.RawMessage
}

// storedRequest is how a request is kept in the store's outgoing_requests.
type storedRequest struct {
	EventType string          `json:"event_type,omitempty"`
	Body      json.RawMessage `json:"body"`
}

// queueRequest stores a request so that OutgoingRequests returns it until it
// is marked as sent. Queuing an ID twice is a no-op.
func (m *Machine) queueRequest(tx *cryptostore.Tx, r *Request) error {
	body, err := json.Marshal(storedRequest{EventType: r.EventType, Body: r.Body})
	if err != nil {
		return err
	}
	return tx.AddOutgoingRequest(&cryptostore.OutgoingRequest{ID: r.ID, Type: string(r.Type), Body: body, CreatedAt: m.now()})
}

// loadRequest decodes a stored request.
func loadRequest(o *cryptostore.OutgoingRequest) (*Request, error) {
	var s storedRequest
	if err := json.Unmarshal(o.Body, &s); err != nil {
		return nil, fmt.Errorf("machine: stored request %s: %w", o.ID, err)
	}
	return &Request{ID: o.ID, Type: RequestType(o.Type), EventType: s.EventType, Body: s.Body}, nil
}

// newRequestID returns a fresh random request (and transaction) ID. It is
// URL-safe: a to-device request's ID is its transaction ID, a path segment of
// PUT /sendToDevice/{eventType}/{txnId}.
func (m *Machine) newRequestID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(m.rand, b[:]); err != nil {
		return "", fmt.Errorf("machine: request id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// toDeviceMessages is the body of a /sendToDevice request: user → device →
// content.
type toDeviceMessages struct {
	Messages map[string]map[string]json.RawMessage `json:"messages"`
}

// queueToDevice queues one /sendToDevice request carrying messages of
// eventType and returns it.
func (m *Machine) queueToDevice(tx *cryptostore.Tx, eventType string, messages map[string]map[string]json.RawMessage) (*Request, error) {
	id, err := m.newRequestID()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(toDeviceMessages{Messages: messages})
	if err != nil {
		return nil, err
	}
	r := &Request{ID: id, Type: RequestToDevice, EventType: eventType, Body: body}
	return r, m.queueRequest(tx, r)
}
