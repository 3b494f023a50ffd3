package xprocess

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
)

// A Lease is one caller's hold on the process's lease, returned by
// [Process.Acquire]. Holds taken while the process already holds the lease
// share one tenure; the row is released when the last of them is released.
// A Lease's methods are safe for concurrent use; Fence must be called inside
// a write transaction of the database the Process was created with.
type Lease struct {
	p       *Process // constant
	t       *tenure  // constant
	stamp   int64    // constant: data stamp when this hold began
	changed bool     // constant

	released atomic.Bool
}

// tenure is one uninterrupted holding of the row by this process, shared by
// every Lease handed out while it lasts.
type tenure struct {
	gen    int64                   // constant
	ctx    context.Context         // constant: cancelled when the tenure ends
	cancel context.CancelCauseFunc // constant
	done   chan struct{}           // constant: closed when the renewal goroutine has exited
	moved  chan struct{}           // constant, cap 1: expires was extended outside the renewal goroutine
	gate   *gateHold               // constant: this tenure's claim on the turnstile

	// guarded by Process.mu:
	count   int   // Leases not yet released
	expires int64 // unix ms, as last written
	lost    bool  // ended by anything but the last Release
}

var errReleased = errors.New("xprocess: lease released")

// Generation returns the lease's generation, the fencing token: it goes up
// whenever the lease changes holder.
func (l *Lease) Generation() int64 { return l.t.gen }

// DataStamp returns the data stamp seen when this hold began: the count of
// fenced write transactions ever committed under the lease.
func (l *Lease) DataStamp() int64 { return l.stamp }

// Changed reports whether state in the database may differ from what this
// process last saw: the (generation, data stamp) found on acquiring differs
// from the one this process saw after its own last acquire or fenced write,
// or this is the process's first acquisition. A store drops its caches when
// Changed is true (invariant 2). A hold that joined a tenure already under
// way reports false: nobody else can write while this process holds.
func (l *Lease) Changed() bool { return l.changed }

// Context returns a context that is cancelled the moment the lease is lost
// (cause [ErrLeaseLost]), when the process suspends ([ErrSuspended]) or
// closes ([ErrClosed]), or when the tenure ends by release.
func (l *Lease) Context() context.Context { return l.t.ctx }

// Lost reports whether the lease was lost, suspended or closed under this
// hold. A lost lease is never valid again; acquire a new one.
func (l *Lease) Lost() bool {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.t.lost
}

// Fence checks, inside the caller's write transaction, that the lease row
// still names this process and generation, and bumps the data stamp
// (invariant 3). If another holder has moved on, Fence returns [ErrLeaseLost]
// and marks the lease lost, cancelling its context; the caller must roll
// back. Expiry is not checked: the transaction holds SQLite's write lock, so
// nobody can take the lease over before it commits.
//
// A fenced transaction that then rolls back makes the next acquisition
// report Changed, which costs a cache reload and nothing else.
func (l *Lease) Fence(tx *sqlitedb.Tx) error {
	if l.released.Load() {
		return ErrLeaseNotHeld
	}
	p := l.p
	p.mu.Lock()
	lost := l.t.lost
	p.mu.Unlock()
	if lost {
		return ErrLeaseLost
	}
	var stamp int64
	err := tx.QueryRow(fenceSQL, leaseName, p.id, l.t.gen).Scan(&stamp)
	if errors.Is(err, sql.ErrNoRows) {
		p.lose(l.t, fmt.Errorf("%w: the row names another holder or generation", ErrLeaseLost))
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("xprocess: fence: %w", err)
	}
	p.mu.Lock()
	if p.cur == l.t {
		p.seen = seen{gen: l.t.gen, stamp: stamp, any: true}
	}
	p.mu.Unlock()
	return nil
}

// Release ends this hold. When it is the process's last hold on the tenure,
// the row is released (expiry set to zero, holder kept) and waiters are
// woken. Release is idempotent; it returns the error of the row write, if
// any (the lease then simply expires).
func (l *Lease) Release() error {
	if !l.released.CompareAndSwap(false, true) {
		return nil
	}
	return l.p.release(l.t)
}

// release drops one hold on t and ends the tenure after the last one.
func (p *Process) release(t *tenure) error {
	p.mu.Lock()
	if t.count > 1 || p.cur != t {
		t.count--
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	// The last hold: serialize with attempts, so that no acquire of ours can
	// extend the row between our letting go and the release write.
	p.rowSem <- struct{}{}
	defer func() { <-p.rowSem }()
	p.mu.Lock()
	t.count--
	if t.count > 0 || p.cur != t {
		p.mu.Unlock()
		return nil
	}
	p.cur = nil
	p.mu.Unlock()
	return p.finish(t, errReleased)
}

// finish ends tenure t, which is no longer current: it stops renewal, frees
// the row if it is still ours, and drops the turnstile. The caller holds
// rowSem.
func (p *Process) finish(t *tenure, cause error) error {
	p.mu.Lock()
	if cause != errReleased {
		t.lost = true
	}
	p.mu.Unlock()
	t.cancel(cause)
	<-t.done
	ctx, cancel := context.WithTimeout(context.Background(), sqlitedb.BusyTimeout)
	defer cancel()
	err := p.db.Write(ctx, "xprocess: release", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		_, err := tx.Exec(releaseSQL, leaseName, p.id, t.gen)
		return err
	})
	t.gate.drop()
	if err != nil {
		p.log.Warn().Err(err).Int64("generation", t.gen).Msg("lease release failed; it will expire")
		return fmt.Errorf("xprocess: release: %w", err)
	}
	p.log.Debug().Int64("generation", t.gen).Msg("lease released")
	return nil
}

// lose ends tenure t because it is no longer ours or may not be: cause says
// why. It does not touch the row.
func (p *Process) lose(t *tenure, cause error) {
	p.mu.Lock()
	if t.lost {
		p.mu.Unlock()
		return
	}
	t.lost = true
	if p.cur == t {
		p.cur = nil
	}
	p.mu.Unlock()
	t.cancel(cause)
	t.gate.drop()
	p.log.Warn().Err(cause).Int64("generation", t.gen).Msg("lease lost")
}

// renew extends tenure t every renewEvery until it ends. A renewal that
// finds the row no longer ours, or an expiry that passes without a
// successful renewal, loses the lease.
func (p *Process) renew(t *tenure) {
	defer p.wg.Done()
	defer close(t.done)
	tick := time.NewTicker(p.renewEvery)
	defer tick.Stop()
	p.mu.Lock()
	expires := t.expires
	p.mu.Unlock()
	expiry := time.NewTimer(time.Until(time.UnixMilli(expires)))
	defer expiry.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-expiry.C:
			p.lose(t, fmt.Errorf("%w: expired before it could be renewed", ErrLeaseLost))
			return
		case <-t.moved:
			p.mu.Lock()
			expires = t.expires
			p.mu.Unlock()
			expiry.Reset(time.Until(time.UnixMilli(expires)))
			continue
		case <-tick.C:
		}
		var n int64
		var next int64
		err := p.db.Write(t.ctx, "xprocess: renew", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
			next = p.now().UnixMilli() + p.dur.Milliseconds()
			r, err := tx.Exec(renewSQL, next, leaseName, p.id, t.gen)
			if err != nil {
				return err
			}
			n, err = r.RowsAffected()
			return err
		})
		switch {
		case t.ctx.Err() != nil:
			return
		case err != nil:
			p.log.Warn().Err(err).Int64("generation", t.gen).Msg("lease renewal failed; retrying")
		case n == 0:
			p.lose(t, fmt.Errorf("%w: renewal found another holder", ErrLeaseLost))
			return
		default:
			p.mu.Lock()
			t.expires = next
			p.mu.Unlock()
			p.renewed()
			expiry.Reset(time.Until(time.UnixMilli(next)))
		}
	}
}
