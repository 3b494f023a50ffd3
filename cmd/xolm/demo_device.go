package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/xprocess"
)

// The demo drives every device through one small command protocol: the
// peer's machine directly, Alice's app and notification extension as
// processes that read one JSON command per line on stdin and answer one JSON
// reply per line on stdout (demo_process.go).
const (
	opOpen        = "open"         // key: the store key in hex (first line of a process only)
	opRequests    = "requests"     // → requests: the outgoing requests
	opSent        = "sent"         // request, response: mark a request as sent
	opSync        = "sync"         // to_device, key counts → outcomes, one per event
	opDecryptRoom = "decrypt_room" // room, events → outcomes, one per event
	opTrack       = "track"        // users: track their device lists
	opClaim       = "claim"        // users: queue a key claim for devices without a session
	opShare       = "share"        // room, users, rotation → no_session when a claim is needed first
	opEncrypt     = "encrypt"      // room, event_type, content → content: the m.room.encrypted content
	opPhase       = "phase"        // phase: "active", "background" or "suspended"
)

// Outcome classes of one decrypted (or not) event.
const (
	classDecrypted     = "decrypted"
	classDuplicate     = "duplicate"     // an Olm message decrypted before, by either process
	classWedged        = "wedged"        // no Olm session with the sender decrypts it
	classUndecryptable = "undecryptable" // any other reason
)

// demoCommand is one command to a device.
type demoCommand struct {
	Op                     string            `json:"op"`
	Key                    string            `json:"key,omitempty"`
	Request                *demoRequest      `json:"request,omitempty"`
	Response               json.RawMessage   `json:"response,omitempty"`
	ToDevice               []json.RawMessage `json:"to_device,omitempty"`
	OneTimeKeyCounts       map[string]int    `json:"one_time_key_counts,omitempty"`
	UnusedFallbackKeyTypes []string          `json:"unused_fallback_key_types"` // null: not reported
	Room                   string            `json:"room,omitempty"`
	Events                 []json.RawMessage `json:"events,omitempty"`
	Users                  []string          `json:"users,omitempty"`
	Rotation               int               `json:"rotation,omitempty"`
	EventType              string            `json:"event_type,omitempty"`
	Content                json.RawMessage   `json:"content,omitempty"`
	Phase                  string            `json:"phase,omitempty"`
}

// demoReply is a device's answer to one command; Err is set when the
// command failed as a whole.
type demoReply struct {
	Err       string          `json:"error,omitempty"`
	Requests  []demoRequest   `json:"requests,omitempty"`
	Outcomes  []demoOutcome   `json:"outcomes,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	NoSession bool            `json:"no_session,omitempty"`
}

// demoRequest is a machine.Request on the wire.
type demoRequest struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	EventType string          `json:"event_type,omitempty"`
	Body      json.RawMessage `json:"body"`
}

// demoOutcome is what became of one event: its class, the decrypted event
// type, and for a failure the reason (and for a wedged session what the
// machine did to recover).
type demoOutcome struct {
	Class     string `json:"class"`
	Type      string `json:"type,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Unwedging string `json:"unwedging,omitempty"`
}

// demoDevice is one device of the demo, in this process or another.
type demoDevice interface {
	do(ctx context.Context, c demoCommand) (demoReply, error)
}

// deviceMachine runs demo commands on a machine in this process.
type deviceMachine struct {
	m *machine.Machine // constant
}

var _ demoDevice = (*deviceMachine)(nil)

func (d *deviceMachine) do(ctx context.Context, c demoCommand) (demoReply, error) {
	var r demoReply
	var err error
	switch c.Op {
	case opRequests:
		var reqs []*machine.Request
		reqs, err = d.m.OutgoingRequests(ctx)
		for _, q := range reqs {
			r.Requests = append(r.Requests, demoRequest{ID: q.ID, Type: string(q.Type), EventType: q.EventType, Body: q.Body})
		}
	case opSent:
		if c.Request == nil {
			return r, errors.New("sent: no request")
		}
		err = d.m.MarkRequestAsSent(ctx, c.Request.ID, machine.RequestType(c.Request.Type), c.Response)
	case opSync:
		var results []machine.ToDeviceResult
		results, err = d.m.ReceiveSyncChanges(ctx, machine.SyncChanges{ToDeviceEvents: c.ToDevice,
			OneTimeKeyCounts: c.OneTimeKeyCounts, UnusedFallbackKeyTypes: c.UnusedFallbackKeyTypes})
		for _, res := range results {
			r.Outcomes = append(r.Outcomes, toDeviceOutcome(res))
		}
	case opDecryptRoom:
		var results []machine.DecryptedRoomEventResult
		results, err = d.m.DecryptRoomEvents(ctx, c.Room, c.Events)
		for _, res := range results {
			r.Outcomes = append(r.Outcomes, roomOutcome(res))
		}
	case opTrack:
		err = d.m.UpdateTrackedUsers(ctx, c.Users)
	case opClaim:
		_, err = d.m.GetMissingSessions(ctx, c.Users) // the claim is queued: OutgoingRequests lists it
	case opShare:
		_, err = d.m.ShareRoomKey(ctx, c.Room, c.Users, machine.EncryptionSettings{RotationMessages: c.Rotation})
		if errors.Is(err, machine.ErrNoOlmSession) {
			r.NoSession, err = true, nil
		}
	case opEncrypt:
		r.Content, err = d.m.EncryptRoomEvent(ctx, c.Room, c.EventType, c.Content)
	case opPhase:
		var ph xprocess.Phase
		if ph, err = parsePhase(c.Phase); err == nil {
			err = d.m.Store().Process().SetPhase(ctx, ph)
		}
	default:
		err = fmt.Errorf("unknown op %q", c.Op)
	}
	return r, err
}

// parsePhase reads a phase as xprocess.Phase.String writes it.
func parsePhase(s string) (xprocess.Phase, error) {
	for _, ph := range []xprocess.Phase{xprocess.Active, xprocess.Background, xprocess.Suspended} {
		if ph.String() == s {
			return ph, nil
		}
	}
	return 0, fmt.Errorf("unknown phase %q", s)
}

// toDeviceOutcome classifies a to-device result. An event that decrypted
// but whose room key was refused counts as undecryptable: its room's
// messages will not decrypt.
func toDeviceOutcome(res machine.ToDeviceResult) demoOutcome {
	o := demoOutcome{Class: classDecrypted, Type: res.Type}
	var wedged *machine.SessionWedgedError
	switch {
	case res.Err == nil:
	case errors.Is(res.Err, machine.ErrDuplicateOlmMessage):
		o.Class = classDuplicate
	case errors.As(res.Err, &wedged):
		o.Class, o.Reason, o.Unwedging = classWedged, res.Err.Error(), wedged.Unwedging.String()
	default:
		o.Class, o.Reason = classUndecryptable, res.Err.Error()
	}
	return o
}

// roomOutcome classifies a room event's result.
func roomOutcome(res machine.DecryptedRoomEventResult) demoOutcome {
	if res.Err != nil {
		return demoOutcome{Class: classUndecryptable, Reason: res.Err.Error()}
	}
	return demoOutcome{Class: classDecrypted, Type: res.Event.Type}
}
