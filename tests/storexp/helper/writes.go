package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/tests/storexp/storeproc"
	"github.com/xolm/xolm/xprocess"
)

// writeLoop commits one transaction after another until the process is
// killed (or one fails): each records the row LoopLabel(run, i, "a"),
// advances the sender's newest session by encrypting with it, stores it, and
// records LoopLabel(run, i, "b"). Durability alternates, Normal first. After
// each commit it prints the event "committed" with Seq i; in iteration
// PauseAt it prints "inside" after the first row and waits PauseInside ms
// before going on, so that a kill lands inside the transaction.
func (h *helper) writeLoop(ctx context.Context, req storeproc.Request) error {
	for i := 0; ; i++ {
		dur := cryptostore.Normal
		if i%2 == 1 {
			dur = cryptostore.Synced
		}
		err := h.store.Update(ctx, "write loop", dur, func(tx *cryptostore.Tx) error {
			if err := tx.AddOlmMessage(storeproc.LabelHash(storeproc.LoopLabel(req.Label, i, "a")), req.Sender); err != nil {
				return err
			}
			recs, err := tx.OlmSessions(req.Sender)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				return cryptostore.ErrNotFound
			}
			if _, _, err := recs[0].Session.Encrypt(rand.Reader, []byte("advance")); err != nil {
				return err
			}
			recs[0].LastUsedAt = time.Now()
			if err := tx.PutOlmSession(recs[0]); err != nil {
				return err
			}
			if req.PauseInside > 0 && i == req.PauseAt {
				h.emit(storeproc.Reply{ID: req.ID, Event: "inside", Seq: i, OK: true})
				time.Sleep(time.Duration(req.PauseInside) * time.Millisecond)
			}
			return tx.AddOlmMessage(storeproc.LabelHash(storeproc.LoopLabel(req.Label, i, "b")), req.Sender)
		})
		if err != nil {
			return fmt.Errorf("iteration %d: %w", i, err)
		}
		h.emit(storeproc.Reply{ID: req.ID, Event: "committed", Seq: i, OK: true})
	}
}

// record records Label in a write transaction. If inside is not nil, it is
// called inside the transaction, after the write, and its error returned.
func (h *helper) record(ctx context.Context, req storeproc.Request, inside func() error) error {
	return h.store.Update(ctx, req.Op, cryptostore.Normal, func(tx *cryptostore.Tx) error {
		if err := tx.AddOlmMessage(storeproc.LabelHash(req.Label), "storexp"); err != nil {
			return err
		}
		if inside == nil {
			return nil
		}
		return inside()
	})
}

// hold is record that prints the event "inside" and keeps the transaction
// open until OpFinish names this request.
func (h *helper) hold(ctx context.Context, req storeproc.Request) error {
	release := make(chan struct{})
	h.mu.Lock()
	h.holds[req.ID] = release
	h.mu.Unlock()
	return h.record(ctx, req, func() error {
		h.emit(storeproc.Reply{ID: req.ID, Event: "inside", OK: true})
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

func (h *helper) finish(target int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	release, ok := h.holds[target]
	if !ok {
		return fmt.Errorf("no hold %d", target)
	}
	delete(h.holds, target)
	close(release)
	return nil
}

// finishAll lets every open hold commit, when stdin ends.
func (h *helper) finishAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, release := range h.holds {
		close(release)
		delete(h.holds, id)
	}
}

func (h *helper) seen(ctx context.Context, req storeproc.Request) (storeproc.Reply, error) {
	var r storeproc.Reply
	err := h.store.View(ctx, "seen", func(tx *cryptostore.Tx) error {
		var err error
		r.Seen, err = tx.SeenOlmMessage(storeproc.LabelHash(req.Label))
		return err
	})
	return r, err
}

// acquire takes the lease and keeps it: only a suspension (or exit) lets go.
func (h *helper) acquire(ctx context.Context) error {
	l, err := h.store.Process().Acquire(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.kept = append(h.kept, l)
	h.mu.Unlock()
	return nil
}

var phases = map[string]xprocess.Phase{
	"active":     xprocess.Active,
	"background": xprocess.Background,
	"suspended":  xprocess.Suspended,
}

// phase moves the process to req.Phase through the store's lease, then
// reports the store's files as they are left.
func (h *helper) phase(ctx context.Context, req storeproc.Request) (storeproc.Reply, error) {
	ph, ok := phases[req.Phase]
	if !ok {
		return storeproc.Reply{}, fmt.Errorf("unknown phase %q", req.Phase)
	}
	err := h.store.Process().SetPhase(ctx, ph)
	r, ferr := h.files()
	if err != nil {
		return r, err
	}
	return r, ferr
}

// files reports the size of the WAL (-1 when there is none) and every file
// descriptor of this process that names one of the store's files: the
// database, its -wal and -shm, and the lease's side files beside it.
func (h *helper) files() (storeproc.Reply, error) {
	r := storeproc.Reply{WALSize: -1}
	if fi, err := os.Stat(h.path + "-wal"); err == nil {
		r.WALSize = fi.Size()
	} else if !os.IsNotExist(err) {
		return r, err
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return r, err
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue // the descriptor ReadDir itself used, now closed
		}
		if strings.HasPrefix(target, h.path) {
			r.Files = append(r.Files, fmt.Sprintf("fd %s: %s", fd.Name(), target))
		}
	}
	sort.Strings(r.Files)
	return r, nil
}
