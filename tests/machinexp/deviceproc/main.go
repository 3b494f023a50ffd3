// Command deviceproc is one process of a device in the two-process machine
// tests: it opens a store and a machine.Machine over it and runs the
// requests it reads from stdin, one JSON line each, each in its own
// goroutine, printing the replies on stdout (the protocol is package
// deviceline's, over package lineproc). It exits, closing the store, when
// stdin ends.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/lineproc"
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

// opTimeout bounds one operation, so that a stuck helper ends its request
// with an error instead of hanging the test.
const opTimeout = 60 * time.Second

type helper struct {
	m   *machine.Machine // constant
	out *lineproc.Output // constant
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "deviceproc:", err)
		os.Exit(1)
	}
}

func run() error {
	dbPath := flag.String("db", "", "store file")
	keyHex := flag.String("key", "", "store key, 64 hex digits")
	role := flag.String("role", "app", "lease role")
	user := flag.String("user", "", "user ID")
	device := flag.String("device", "", "device ID")
	skip := flag.Bool("insecure-skip-cache-invalidation", false, "open with InsecureSkipCacheInvalidation")
	flag.Parse()
	var key [32]byte
	k, err := hex.DecodeString(*keyHex)
	if err != nil || len(k) != len(key) {
		return fmt.Errorf("-key must be %d hex digits", 2*len(key))
	}
	copy(key[:], k)
	ctx := context.Background()
	store, err := cryptostore.Open(ctx, *dbPath, cryptostore.Options{Key: &key, Role: *role, InsecureSkipCacheInvalidation: *skip})
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := machine.Open(ctx, store, *user, *device, machine.Options{})
	if err != nil {
		return err
	}
	h := &helper{m: m, out: lineproc.NewOutput(os.Stdout)}
	ids := m.IdentityKeys()
	h.emit(deviceline.Reply{Envelope: lineproc.Envelope{Event: "ready"}, OK: true,
		Holder: store.Process().Holder().String(), Curve25519: ids.Curve25519.String(), Ed25519: ids.Ed25519.String()})
	wait, err := lineproc.Serve(os.Stdin, h.out, func(req deviceline.Request) { h.emit(h.serve(req)) })
	wait()
	if err != nil {
		return err
	}
	return store.Close()
}

// serve runs one request and returns its reply.
func (h *helper) serve(req deviceline.Request) deviceline.Reply {
	if req.StartAt != 0 {
		time.Sleep(time.Until(time.Unix(0, req.StartAt)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var r deviceline.Reply
	var err error
	switch req.Op {
	case deviceline.OpOutgoing:
		var reqs []*machine.Request
		reqs, err = h.m.OutgoingRequests(ctx)
		r.Requests = outRequests(reqs)
	case deviceline.OpMark:
		err = h.m.MarkRequestAsSent(ctx, req.RequestID, machine.RequestType(req.RequestType), req.Response)
	case deviceline.OpSync:
		r.Results, err = h.sync(ctx, req)
	case deviceline.OpTrack:
		err = h.m.UpdateTrackedUsers(ctx, req.Users)
	case deviceline.OpShare:
		var reqs []*machine.Request
		reqs, err = h.m.ShareRoomKey(ctx, req.Room, req.Users, machine.EncryptionSettings{})
		r.Requests = outRequests(reqs)
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	r.ID = req.ID
	r.OK = err == nil
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

func outRequests(reqs []*machine.Request) []deviceline.OutRequest {
	out := make([]deviceline.OutRequest, len(reqs))
	for i, q := range reqs {
		out[i] = deviceline.OutRequest{ID: q.ID, Type: string(q.Type), EventType: q.EventType, Body: q.Body}
	}
	return out
}

// sync hands the events and key counts to ReceiveSyncChanges.
func (h *helper) sync(ctx context.Context, req deviceline.Request) ([]deviceline.Result, error) {
	res, err := h.m.ReceiveSyncChanges(ctx, machine.SyncChanges{ToDeviceEvents: req.Events, OneTimeKeyCounts: req.OneTimeKeyCounts})
	if err != nil {
		return nil, err
	}
	out := make([]deviceline.Result, len(res))
	for i, e := range res {
		out[i] = deviceline.Result{Type: e.Type, Sender: e.Sender, Encrypted: e.Encrypted, SenderKey: e.SenderKey}
		if e.RoomKey != nil {
			out[i].RoomID, out[i].SessionID, out[i].Stored = e.RoomKey.RoomID, e.RoomKey.SessionID, e.RoomKey.Stored
		}
		if e.Err != nil {
			out[i].Reason, out[i].Err = reason(e.Err), e.Err.Error()
		}
	}
	return out, nil
}

// reason names the class of a to-device event's error.
func reason(err error) string {
	for _, c := range []struct {
		err    error
		reason string
	}{
		{machine.ErrDuplicateOlmMessage, deviceline.ReasonDuplicate},
		{machine.ErrSessionWedged, deviceline.ReasonWedged},
		{machine.ErrInvalidOlmPlaintext, deviceline.ReasonPlaintext},
		{machine.ErrNotForThisDevice, deviceline.ReasonNotForDevice},
		{machine.ErrMalformedToDevice, deviceline.ReasonMalformed},
		{machine.ErrToDeviceAlgorithm, deviceline.ReasonAlgorithm},
		{machine.ErrInvalidRoomKey, deviceline.ReasonRoomKey},
		{machine.ErrToDeviceBatchLimit, deviceline.ReasonBatchLimit},
	} {
		if errors.Is(err, c.err) {
			return c.reason
		}
	}
	return deviceline.ReasonOther
}

// emit prints one line.
func (h *helper) emit(r deviceline.Reply) {
	if err := h.out.Print(r); err != nil {
		fmt.Fprintln(os.Stderr, "deviceproc: stdout:", err)
		os.Exit(1)
	}
}
