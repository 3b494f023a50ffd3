package xprocess

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/xolm/xolm/internal/sqlitedb"
)

// Transaction-scoped holds: a protocol step that only needs the lease for
// one write transaction takes it inside that transaction and releases it at
// the end, so the step costs one commit instead of three (acquire, work,
// release). Exclusion is the same: the transaction holds SQLite's write lock
// from the take to the release, and the row says who moved state on last.

// errTxBusy ends a transaction-scoped attempt that found the lease taken or
// another process's turn next; Write then waits like Acquire.
var errTxBusy = errors.New("xprocess: lease busy")

// Write runs fn in one write transaction under the lease, and onCommit (if
// not nil) after a successful commit, still inside the database's writer
// lock, so that the onCommit calls of successive transactions run in commit
// order.
//
// If this process holds the lease (Acquire), the transaction is fenced with
// that hold. Otherwise the lease is taken inside the transaction and released
// at its end; if another process holds it, or a waiter has the next turn,
// Write waits for its turn as Acquire does. fn learns the generation and
// whether state may have changed since this process last saw it (as
// [Lease.Changed]) before it reads anything. Write fails with ErrLeaseLost when the fence finds another holder.
func (p *Process) Write(ctx context.Context, why string, dur sqlitedb.Durability,
	fn func(tx *sqlitedb.Tx, generation int64, changed bool) error, onCommit func()) error {
	if l, err := p.reenter(); err != nil {
		return err
	} else if l != nil {
		defer l.Release()
		return p.writeHeld(ctx, why, dur, l, fn, onCommit)
	}
	if !p.gate.othersWaiting() {
		// With another process waiting, take the turn through Acquire,
		// which lets the waiter go first if this process held last: a
		// registered waiter writes no claim into the row, so a
		// transaction-scoped take would never see it.
		err := p.writeScoped(ctx, why, dur, fn, onCommit)
		if !errors.Is(err, errTxBusy) {
			return err
		}
	}
	l, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer l.Release()
	return p.writeHeld(ctx, why, dur, l, fn, onCommit)
}

func (p *Process) writeHeld(ctx context.Context, why string, dur sqlitedb.Durability, l *Lease,
	fn func(tx *sqlitedb.Tx, generation int64, changed bool) error, onCommit func()) error {
	return p.db.WriteThen(ctx, why, dur, func(tx *sqlitedb.Tx) error {
		if err := l.Fence(tx); err != nil {
			return err
		}
		return fn(tx, l.Generation(), l.Changed())
	}, onCommit)
}

// writeScoped tries to take the lease for the span of one transaction.
func (p *Process) writeScoped(ctx context.Context, why string, dur sqlitedb.Durability,
	fn func(tx *sqlitedb.Tx, generation int64, changed bool) error, onCommit func()) error {
	select {
	case p.rowSem <- struct{}{}: // no Acquire or Release of ours changes the row meanwhile
	case <-ctx.Done():
		return fmt.Errorf("xprocess: %s: %w", why, context.Cause(ctx))
	}
	defer func() { <-p.rowSem }()
	p.mu.Lock()
	err := p.usableLocked()
	prev := p.seen
	// A live tenure of ours (one whose renewal is late, or one an Acquire
	// started since Write looked) must not have its row released at the end
	// of this transaction: join it through Acquire instead.
	held := p.cur != nil && !p.cur.lost
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if held {
		return errTxBusy
	}
	// Hold the turnstile for the transaction, as a tenure does: if another
	// process holds the lease, or is taking it in a transaction of its own,
	// queue through Acquire rather than in SQLite's busy handler, which is
	// no queue; and a waiter blocked on the turnstile is woken at the end.
	release, ok := p.gate.tryHoldScoped()
	if !ok {
		return errTxBusy
	}
	defer release()
	dead := func(id string) bool { return holderDead(p.aliveDir, id) }
	var now seen
	err = p.db.WriteThen(ctx, why, dur, func(tx *sqlitedb.Tx) error {
		take, err := p.takeScoped(tx, prev, dead)
		if err != nil {
			return err
		}
		gen := take.gen
		if err := fn(tx, gen, seen{gen: gen, stamp: take.before, any: true} != prev); err != nil {
			return err
		}
		if take.release {
			// Fence, bump the data stamp and release in one statement. The
			// take above happened in this same transaction, which holds
			// SQLite's write lock throughout, so the row still names us;
			// checking holder and generation again keeps the fence explicit.
			if err := tx.QueryRow(fenceReleaseSQL, leaseName, p.id, gen).Scan(&take.after); err != nil {
				return fmt.Errorf("xprocess: fence and release: %w", err)
			}
		}
		now = seen{gen: gen, stamp: take.after, any: true}
		if prev.any && prev.gen != gen {
			p.log.Info().Int64("from", prev.gen).Int64("to", gen).Msg("lease generation changed")
		}
		return nil
	}, func() {
		p.mu.Lock()
		p.seen = now
		p.mu.Unlock()
		if onCommit != nil {
			onCommit()
		}
	})
	return err
}

// scopedTake is how a transaction-scoped write took the lease: at which
// generation, the data stamp before and after the transaction, and whether
// the lease still has to be released (with the stamp bumped) at its end.
type scopedTake struct {
	gen, before, after int64
	release            bool
}

// takeScoped takes the lease inside a write transaction, cheapest way
// first: the row as this process left it (one UPDATE without RETURNING);
// released by this process last (one UPDATE … RETURNING); else the full
// take, with takeover of a dead holder, which leaves the release to the end
// of the transaction. It returns errTxBusy when another process holds the
// lease or has the next turn.
func (p *Process) takeScoped(tx *sqlitedb.Tx, prev seen, dead func(string) bool) (scopedTake, error) {
	if ok, err := resume(tx, p.id, prev); err != nil || ok {
		return scopedTake{gen: prev.gen, before: prev.stamp, after: prev.stamp + 1}, err
	}
	var gen, stamp int64
	err := tx.QueryRow(scopedRetakeSQL, leaseName, p.id).Scan(&gen, &stamp)
	if err == nil {
		return scopedTake{gen: gen, before: stamp - 1, after: stamp}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return scopedTake{}, fmt.Errorf("xprocess: take: %w", err)
	}
	res, err := tryRow(tx, p.id, newClock(p.now(), p.dur), p.dur, false, dead)
	if err != nil {
		return scopedTake{}, err
	}
	if !res.ok {
		return scopedTake{}, errTxBusy
	}
	return scopedTake{gen: res.generation, before: res.dataStamp, release: true}, nil
}

// resume is the cheapest scoped take: it bumps the data stamp if the row
// still stands as this process left it (released by it, nobody waiting, the
// generation and stamp it saw), and reports whether it did.
func resume(tx *sqlitedb.Tx, holder string, prev seen) (bool, error) {
	if !prev.any {
		return false, nil
	}
	res, err := tx.Exec(scopedResumeSQL, leaseName, holder, prev.gen, prev.stamp)
	if err != nil {
		return false, fmt.Errorf("xprocess: take: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("xprocess: take: %w", err)
	}
	return n == 1, nil
}

// Observe reads the lease row inside the caller's read transaction, whose
// snapshot it pins, and reports whether state may have changed since this
// process last saw it; a reader drops its caches when it has. It costs one
// primary-key read. Reads need no exclusion: a snapshot cannot be changed
// under them, and every decision that changes state is taken again inside a
// write transaction under the lease.
func (p *Process) Observe(tx *sqlitedb.Tx) (generation int64, changed bool, err error) {
	var gen, stamp int64
	err = tx.QueryRow(`SELECT generation, data_stamp FROM xprocess_lease WHERE name = ?`, leaseName).Scan(&gen, &stamp)
	if errors.Is(err, sql.ErrNoRows) {
		gen, stamp, err = 0, 0, nil // nobody has written under the lease yet
	}
	if err != nil {
		return 0, false, fmt.Errorf("xprocess: observe: %w", err)
	}
	obs := seen{gen: gen, stamp: stamp, any: true}
	p.mu.Lock()
	defer p.mu.Unlock()
	changed = obs != p.seen
	// Generations and stamps only grow: an older snapshot must not move what
	// this process has seen backwards.
	if !p.seen.any || gen > p.seen.gen || (gen == p.seen.gen && stamp > p.seen.stamp) {
		p.seen = obs
	}
	return gen, changed, nil
}
