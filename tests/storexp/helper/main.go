// Command helper is one process of the cross-process store tests: it opens a
// store and runs the requests it reads from stdin, one JSON line each, each
// in its own goroutine, printing replies and events on stdout (the protocol
// is package storeproc's, over package lineproc). It exits, closing the store,
// when stdin ends.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/lineproc"
	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/tests/storexp/storeproc"
	"github.com/xolm/xolm/xprocess"
)

// opTimeout bounds one operation, so that a wedged helper ends its request
// with an error instead of hanging the test.
const opTimeout = 60 * time.Second

// errKeyRowGone reports a pre-key message whose one-time key the account
// still held while its row had already been deleted by another process.
var errKeyRowGone = errors.New("one-time key row already deleted")

type helper struct {
	store *cryptostore.Store // constant
	key   [32]byte           // constant: the store key, which also opens the sessions tests send
	path  string             // constant: the store file, symlinks resolved

	out *lineproc.Output // constant

	mu    sync.Mutex
	holds map[int]chan struct{} // guarded by mu: OpHold requests waiting for OpFinish
	kept  []*xprocess.Lease     // guarded by mu: leases taken by OpAcquire, never released
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
}

func run() error {
	dbPath := flag.String("db", "", "store file")
	keyHex := flag.String("key", "", "store key, 64 hex digits")
	role := flag.String("role", "app", "lease role")
	skip := flag.Bool("insecure-skip-cache-invalidation", false, "open with InsecureSkipCacheInvalidation")
	lease := flag.Duration("lease", 0, "lease duration (0: the default)")
	flag.Parse()
	h := &helper{out: lineproc.NewOutput(os.Stdout), holds: map[int]chan struct{}{}}
	k, err := hex.DecodeString(*keyHex)
	if err != nil || len(k) != len(h.key) {
		return fmt.Errorf("-key must be %d hex digits", 2*len(h.key))
	}
	copy(h.key[:], k)
	dir, err := filepath.EvalSymlinks(filepath.Dir(*dbPath))
	if err != nil {
		return err
	}
	h.path = filepath.Join(dir, filepath.Base(*dbPath))
	h.store, err = cryptostore.Open(context.Background(), h.path, cryptostore.Options{
		Key: &h.key, Role: *role, InsecureSkipCacheInvalidation: *skip,
		Lease: xprocess.Options{Duration: *lease},
	})
	if err != nil {
		return err
	}
	h.emit(storeproc.Reply{Event: "ready", OK: true, Holder: h.store.Process().Holder().String()})
	wait, err := lineproc.Serve(os.Stdin, h.out, func(req storeproc.Request) { h.emit(h.serve(req)) })
	h.finishAll()
	wait()
	if err != nil {
		h.store.Close()
		return err
	}
	return h.store.Close()
}

// serve runs one request and returns its reply.
func (h *helper) serve(req storeproc.Request) storeproc.Reply {
	if req.StartAt != 0 {
		time.Sleep(time.Until(time.Unix(0, req.StartAt)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var r storeproc.Reply
	var err error
	switch req.Op {
	case storeproc.OpPutSession:
		r, err = h.putSession(ctx, req)
	case storeproc.OpViewSession:
		r, err = h.viewSession(ctx, req)
	case storeproc.OpViewAccount:
		r, err = h.viewAccount(ctx)
	case storeproc.OpDecrypt:
		r, err = h.decrypt(ctx, req)
	case storeproc.OpEncrypt:
		r, err = h.encrypt(ctx, req)
	case storeproc.OpPreKey:
		r, err = h.preKey(ctx, req)
	case storeproc.OpWriteLoop:
		err = h.writeLoop(ctx, req)
	case storeproc.OpRecord:
		err = h.record(ctx, req, nil)
	case storeproc.OpHold:
		err = h.hold(ctx, req)
	case storeproc.OpFinish:
		err = h.finish(req.Target)
	case storeproc.OpSeen:
		r, err = h.seen(ctx, req)
	case storeproc.OpAcquire:
		err = h.acquire(ctx)
	case storeproc.OpPhase:
		r, err = h.phase(ctx, req)
	case storeproc.OpFiles:
		r, err = h.files()
	default:
		err = fmt.Errorf("unknown op %q", req.Op)
	}
	r.ID = req.ID
	r.OK = err == nil
	if err != nil {
		r.Err, r.Kind = err.Error(), kind(err)
	}
	return r
}

// kind names the class of err for the test.
func kind(err error) string {
	switch {
	case errors.Is(err, cryptostore.ErrSuspended):
		return storeproc.KindSuspended
	case errors.Is(err, cryptostore.ErrLeaseLost):
		return storeproc.KindLeaseLost
	case errors.Is(err, olm.ErrBadMAC):
		return storeproc.KindBadMAC
	case errors.Is(err, olm.ErrMissingOneTimeKey):
		return storeproc.KindMissingOTK
	case errors.Is(err, errKeyRowGone):
		return storeproc.KindKeyRowGone
	}
	return storeproc.KindOther
}

// emit prints one line.
func (h *helper) emit(r storeproc.Reply) {
	if err := h.out.Print(r); err != nil {
		fmt.Fprintln(os.Stderr, "helper: stdout:", err)
		os.Exit(1)
	}
}
