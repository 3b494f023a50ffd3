package xprocess

import (
	"sync"
	"time"

	"github.com/xolm/xolm/internal/flock"
)

// A turnstile is how a waiter learns quickly that the lease is free: the
// holder keeps an exclusive flock on <db path>.lease while it holds the row
// (taken right after the row, dropped right after releasing it), and a
// waiter blocks on the same lock through a file of its own, lets go the
// moment it gets it, and retries the row. Because a frozen holder keeps the
// lock forever, waiters also poll; the turnstile only makes the common case
// fast.
//
// A blocking flock cannot be cancelled, so at most one goroutine per process
// is ever blocked on the turnstile. It serves both a waiting acquire and a
// new holder that could not take the lock at once; when it gets the lock it
// hands it to the current holding, if one still wants it, and otherwise lets
// go and closes its file. Such a goroutine may outlive Close: it exits as soon
// as the kernel grants the lock.
type turnstile struct {
	path    string // constant; "" where flock is unsupported
	waiters string // constant: see joinWaiters; "" where flock is unsupported

	mu      sync.Mutex
	blocked chan struct{} // guarded by mu: closed when the blocked goroutine gets the lock; nil if none
	owner   *gateHold     // guarded by mu: the holding that wants the lock kept, if any

	// Files opened once and kept, so that the hot path (a transaction-scoped
	// write) costs a lock and an unlock rather than an open and a close each
	// time. Scoped holds are serialized by the process's rowSem and never
	// adopted by a tenure, so one file serves them all; the probe only ever
	// holds its lock for an instant. Both are closed on suspension and Close
	// (a suspended process keeps no files of the store open) and reopened
	// on demand.
	filesMu sync.Mutex
	scoped  *flock.File // guarded by filesMu
	probe   *flock.File // guarded by filesMu
}

// gateHold is one holding's claim on the turnstile lock.
type gateHold struct {
	g       *turnstile  // constant
	f       *flock.File // guarded by g.mu: the locked file, nil until obtained
	dropped bool        // guarded by g.mu
}

func newTurnstile(dbPath string) *turnstile {
	if !flock.Supported {
		return &turnstile{}
	}
	return &turnstile{path: dbPath + ".lease", waiters: dbPath + ".waiters"}
}

// Waiting processes hold a shared flock on <db path>.waiters for as long as
// they wait, so that the process that released the lease last can tell,
// without writing to the database, that someone is waiting and stand aside.
// (A waiter's claim in the row needs SQLite's write lock, which a busy holder
// keeps taking; SQLite's busy handler is no queue.)

// joinWaiters registers this process as waiting and returns the function
// that ends the registration, or nil if it could not register (no flock, or
// another process probing at this instant); it may try again.
func (g *turnstile) joinWaiters() (leave func()) {
	if g.waiters == "" {
		return nil
	}
	f, err := flock.Open(g.waiters)
	if err != nil {
		return nil
	}
	// A probe holds the exclusive lock for a few microseconds; try a few
	// times rather than block, which could not be cancelled.
	for range 5 {
		if ok, _ := f.TryLockShared(); ok {
			return func() { f.Close() }
		}
		time.Sleep(20 * time.Microsecond)
	}
	f.Close()
	return nil
}

// othersWaiting reports whether any process is registered as waiting. The
// caller must not be registered itself.
func (g *turnstile) othersWaiting() bool {
	if g.waiters == "" {
		return false
	}
	g.filesMu.Lock()
	defer g.filesMu.Unlock()
	if g.probe == nil {
		f, err := flock.Open(g.waiters)
		if err != nil {
			return false
		}
		g.probe = f
	}
	ok, err := g.probe.TryLock()
	if ok {
		g.probe.Unlock()
	}
	return err == nil && !ok
}

// tryHoldScoped takes the turnstile lock for one transaction-scoped write if
// it is free at once, through the kept scoped file, and returns the function
// that lets go; ok is false if the lock is taken. Where flock is unsupported
// or the file cannot be opened it succeeds and holds nothing (waiters poll).
// The caller holds the process's rowSem.
func (g *turnstile) tryHoldScoped() (release func(), ok bool) {
	if g.path == "" {
		return func() {}, true
	}
	g.filesMu.Lock()
	defer g.filesMu.Unlock()
	if g.scoped == nil {
		f, err := flock.Open(g.path)
		if err != nil {
			return func() {}, true
		}
		g.scoped = f
	}
	f := g.scoped
	if locked, _ := f.TryLock(); !locked {
		return nil, false
	}
	return func() { f.Unlock() }, true
}

// closeFiles closes the kept files; they are reopened on demand.
func (g *turnstile) closeFiles() {
	g.filesMu.Lock()
	defer g.filesMu.Unlock()
	for _, f := range []**flock.File{&g.scoped, &g.probe} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

// hold claims the turnstile lock for a new holding: at once if it is free,
// otherwise as soon as the blocked goroutine obtains it.
func (g *turnstile) hold() *gateHold {
	h := &gateHold{g: g}
	if g.path == "" {
		return h
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.owner = h
	f, err := flock.Open(g.path)
	if err != nil {
		return h // waiters fall back to polling
	}
	if ok, _ := f.TryLock(); ok {
		h.f = f
		return h
	}
	f.Close()
	g.blockLocked()
	return h
}

// tryHold takes the turnstile lock for a transaction-scoped holding if it
// is free at once, and returns nil if not: someone holds the lease or is
// about to, and the caller should queue through Acquire. Where flock is
// unsupported it always succeeds and holds nothing.
func (g *turnstile) tryHold() *gateHold {
	h := &gateHold{g: g, dropped: true} // never an owner for the blocked goroutine
	if g.path == "" {
		return h
	}
	f, err := flock.Open(g.path)
	if err != nil {
		return h
	}
	if ok, _ := f.TryLock(); !ok {
		f.Close()
		return nil
	}
	g.mu.Lock()
	h.f = f
	g.mu.Unlock()
	return h
}

// adopt makes a hold taken by tryHold the lock of a tenure.
func (g *turnstile) adopt(h *gateHold) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h.dropped = false
	g.owner = h
}

// drop lets go of the lock (or the claim on it). It is idempotent.
func (h *gateHold) drop() {
	g := h.g
	g.mu.Lock()
	h.dropped = true
	if g.owner == h {
		g.owner = nil
	}
	f := h.f
	h.f = nil
	g.mu.Unlock()
	if f != nil {
		f.Unlock()
		f.Close()
	}
}

// wait returns a channel that is closed when the turnstile lock was free for
// a moment; nil (never ready) where flock is unsupported.
func (g *turnstile) wait() <-chan struct{} {
	if g.path == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blockLocked()
}

// blockLocked starts the blocked goroutine unless one is running, and
// returns its channel.
func (g *turnstile) blockLocked() chan struct{} {
	if g.blocked != nil {
		return g.blocked
	}
	f, err := flock.Open(g.path)
	if err != nil {
		return nil
	}
	done := make(chan struct{})
	g.blocked = done
	go func() {
		err := f.Lock()
		g.mu.Lock()
		g.blocked = nil
		h := g.owner
		keep := err == nil && h != nil && !h.dropped && h.f == nil
		if keep {
			h.f = f
		}
		g.mu.Unlock()
		if !keep {
			f.Unlock()
			f.Close()
		}
		close(done)
	}()
	return done
}
