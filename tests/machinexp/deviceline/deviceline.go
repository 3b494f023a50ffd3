// Package deviceline is the line protocol between the two-process machine
// tests and their helper program, deviceproc, and the test side of it: build
// the helper and start processes of one device on one store file, as an app
// and its notification extension are.
//
// A helper opens a cryptostore.Store and a machine.Machine over it, prints
// the line "ready" with its identity keys, and runs each request line it
// reads (package lineproc carries them) in its own goroutine: a machine
// method, whose outcome it prints as a [Reply] with the request's id. The
// test plays the homeserver: it hands the helper sync data and the responses
// to the requests the helper's machine produced.
package deviceline

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/xolm/xolm/internal/gobuild"
	"github.com/xolm/xolm/internal/lineproc"
)

// Operations a helper understands, each one machine method.
const (
	OpOutgoing = "outgoing" // OutgoingRequests
	OpMark     = "mark"     // MarkRequestAsSent(RequestID, RequestType, Response)
	OpSync     = "sync"     // ReceiveSyncChanges(Events, OneTimeKeyCounts)
	OpTrack    = "track"    // UpdateTrackedUsers(Users)
	OpShare    = "share"    // ShareRoomKey(Room, Users, default settings)
)

// Reasons a to-device event was not decrypted, in [Result.Reason]: one per
// error class of machine.ToDeviceResult.Err.
const (
	ReasonDuplicate    = "duplicate"      // machine.ErrDuplicateOlmMessage
	ReasonWedged       = "wedged"         // machine.ErrSessionWedged
	ReasonPlaintext    = "plaintext"      // machine.ErrInvalidOlmPlaintext
	ReasonNotForDevice = "not-for-device" // machine.ErrNotForThisDevice
	ReasonMalformed    = "malformed"      // machine.ErrMalformedToDevice
	ReasonAlgorithm    = "algorithm"      // machine.ErrToDeviceAlgorithm
	ReasonRoomKey      = "room-key"       // machine.ErrInvalidRoomKey
	ReasonBatchLimit   = "batch-limit"    // machine.ErrToDeviceBatchLimit
	ReasonOther        = "other"
)

// Request is one line sent to a helper.
type Request struct {
	ID int    `json:"id"`
	Op string `json:"op"`
	// StartAt, Unix nanoseconds, delays the operation until then: requests
	// sent to several processes with one StartAt race each other.
	StartAt int64 `json:"start_at,omitempty"`

	Users []string `json:"users,omitempty"` // track, share
	Room  string   `json:"room,omitempty"`  // share

	RequestID   string          `json:"request_id,omitempty"`   // mark
	RequestType string          `json:"request_type,omitempty"` // mark
	Response    json.RawMessage `json:"response,omitempty"`     // mark

	Events           []json.RawMessage `json:"events,omitempty"`              // sync: to_device.events
	OneTimeKeyCounts map[string]int    `json:"one_time_key_counts,omitempty"` // sync
}

// SetID numbers the request (lineproc.Request).
func (r *Request) SetID(id int) { r.ID = id }

// Reply is one line printed by a helper: the line "ready" (ID 0) or the
// reply to request ID.
type Reply struct {
	lineproc.Envelope
	OK  bool   `json:"ok"`
	Err string `json:"err,omitempty"`

	// Holder, Curve25519 and Ed25519 are in the "ready" line: the lease
	// holder identity and the device's identity keys.
	Holder     string `json:"holder,omitempty"`
	Curve25519 string `json:"curve25519,omitempty"`
	Ed25519    string `json:"ed25519,omitempty"`

	Requests []OutRequest `json:"requests,omitempty"` // outgoing, share
	Results  []Result     `json:"results,omitempty"`  // sync: one per event, in order
}

// OutRequest is a machine.Request.
type OutRequest struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	EventType string          `json:"event_type,omitempty"`
	Body      json.RawMessage `json:"body"`
}

// Result is a machine.ToDeviceResult.
type Result struct {
	Type      string `json:"type"`
	Sender    string `json:"sender"`
	Encrypted bool   `json:"encrypted"`
	SenderKey string `json:"sender_key,omitempty"`
	// RoomID, SessionID and Stored describe the room key the event carried.
	RoomID    string `json:"room_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Stored    bool   `json:"stored,omitempty"`
	// Reason is empty for an event decrypted with its room key stored;
	// Err then is empty too.
	Reason string `json:"reason,omitempty"`
	Err    string `json:"err,omitempty"`
}

// Build compiles the helper program into dir and returns the binary's path.
func Build(dir string) (string, error) {
	return gobuild.Binary(dir, "github.com/xolm/xolm/tests/machinexp/deviceproc", "deviceproc")
}

// Config starts one helper process: one process of a device on a store.
type Config struct {
	DB               string   // the store file
	Key              [32]byte // the store key
	Role             string   // the lease role: "app", "nse", …
	UserID, DeviceID string
	// SkipInvalidation opens the store with InsecureSkipCacheInvalidation.
	SkipInvalidation bool
}

// Proc is one running helper: a lineproc.Proc whose replies are Reply
// lines. Its methods are safe for concurrent use.
type Proc struct {
	*lineproc.Proc[Reply]
	Role string
	// Holder is the lease holder identity, Curve25519 and Ed25519 the
	// device's identity keys, as the helper reported them.
	Holder, Curve25519, Ed25519 string
}

// Start runs the helper at bin and waits until its machine is open.
func Start(bin string, cfg Config, timeout time.Duration) (*Proc, error) {
	args := []string{"-db", cfg.DB, "-key", fmt.Sprintf("%x", cfg.Key[:]), "-role", cfg.Role,
		"-user", cfg.UserID, "-device", cfg.DeviceID}
	if cfg.SkipInvalidation {
		args = append(args, "-insecure-skip-cache-invalidation")
	}
	lp, err := lineproc.Start[Reply](bin, args...)
	if err != nil {
		return nil, err
	}
	ready, err := lp.WaitEvent(0, "ready", timeout)
	if err != nil {
		lp.Kill()
		return nil, err
	}
	return &Proc{Proc: lp, Role: cfg.Role, Holder: ready.Holder, Curve25519: ready.Curve25519, Ed25519: ready.Ed25519}, nil
}

// Send sends req with a fresh ID, which it returns, without waiting.
func (p *Proc) Send(req Request) (int, error) { return p.Proc.Send(&req) }

// Call sends req and waits for its reply. A reply reporting an error is
// returned as is, not as an error: tests assert on it.
func (p *Proc) Call(req Request, timeout time.Duration) (Reply, error) {
	return p.Proc.Call(&req, timeout)
}
