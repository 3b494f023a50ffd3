package xprocess

import (
	"context"
	"fmt"
	"time"
)

// yieldMax bounds how long a process that released the lease last stands
// aside for a waiting process before taking the lease back. A live waiter
// takes its turn well within it; a frozen one costs this once, after which
// the process yields less and less often until it sees another holder.
const yieldMax = 20 * time.Millisecond

// maxYieldBack bounds how many acquisitions in a row skip yielding after
// waiters repeatedly let yields time out: a frozen waiter costs one yieldMax
// per this many acquisitions.
const maxYieldBack = 256

// minTurnPoll is the first poll interval while the lease is free but another
// process has the turn: that process is expected to take it within a
// fraction of a millisecond, after which we block on the turnstile.
const minTurnPoll = 100 * time.Microsecond

// Acquire returns a hold on the lease, waiting (until ctx is done) while
// another process holds it or has the next turn. If this process already
// holds a valid lease, Acquire returns another hold on it at once. Release
// every Lease, normally at the end of the operation it guards.
//
// Fairness: a waiting process registers itself (a shared lock on a side
// file); a process that released the lease last and finds another waiting
// lets that one go first, for up to 20 ms. Where the registration is not
// available, a refused waiter claims the next turn in the row instead. Two
// processes that both want the lease all the time therefore alternate.
func (p *Process) Acquire(ctx context.Context) (*Lease, error) {
	if l, err := p.reenter(); l != nil || err != nil {
		return l, err
	}
	select {
	case p.waitSem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("xprocess: acquire: %w", context.Cause(ctx))
	}
	defer func() { <-p.waitSem }()
	p.mu.Lock()
	suspending := p.suspending
	mayYield := p.yieldSkip == 0
	if !mayYield {
		p.yieldSkip--
	}
	p.mu.Unlock()

	var registered func() // ends this process's registration as a waiter
	defer func() {
		if registered != nil {
			registered()
		}
	}()
	var yieldUntil time.Time
	yield := func() bool {
		switch {
		case yieldUntil.IsZero():
			// Only before registering: our own registration would count.
			if mayYield && registered == nil && p.gate.othersWaiting() {
				yieldUntil = time.Now().Add(yieldMax)
				return true
			}
			mayYield = false
			return false
		case time.Now().Before(yieldUntil):
			return true
		}
		if mayYield {
			// The waiter is slow or frozen: stop yielding for a while, twice
			// as long each time, until another holder shows up.
			mayYield = false
			p.mu.Lock()
			p.yieldBack = min(max(2*p.yieldBack, 1), maxYieldBack)
			p.yieldSkip = p.yieldBack
			p.mu.Unlock()
			p.log.Debug().Msg("a waiting process did not take its turn; taking the lease back")
		}
		return false
	}
	heldPoll, turnPoll := minPoll, minTurnPoll
	force := false // try the row even if the turnstile is taken
	useless := 0   // turnstile wake-ups in a row that found the lease still taken
	for {
		if l, err := p.reenter(); l != nil || err != nil {
			return l, err
		}
		// A registered waiter does not write its claim into the row while
		// another process holds the lease: the holder learns of it from the
		// registration, and the write would only contend for SQLite's write
		// lock, whose busy handler sleeps a millisecond or more per
		// collision. Without registration, the claim is written. The first
		// look may yield, so it comes before registering.
		res, canWin, canClaim, err := p.peek(ctx, yield)
		if err != nil {
			return nil, err
		}
		// The row looks free; take the turnstile first. If it is taken,
		// another process is inside a transaction under the lease, or about
		// to hold it: wait on the turnstile instead of in SQLite's busy
		// handler. If it stays taken for a whole poll interval, its holder
		// may be frozen, and the row is tried without it.
		var gate *gateHold
		gateTaken := false
		if canWin && !force {
			if gate = p.gate.tryHold(); gate == nil {
				canWin, gateTaken = false, true
				res = attemptResult{held: true, until: time.Now().Add(maxPoll).UnixMilli()}
			}
		}
		force = false
		if !canWin && registered == nil {
			registered = p.gate.joinWaiters()
		}
		if canWin || registered == nil && canClaim {
			var l *Lease
			res, l, err = p.attempt(ctx, registered == nil, gate)
			if l == nil && gate != nil {
				gate.drop()
			}
			if isBusy(err) {
				// A writer kept SQLite's lock past its busy timeout; the
				// lease may be free by now.
				p.log.Debug().Err(err).Msg("lease attempt found the database busy; waiting on")
				res, err = attemptResult{held: true, until: time.Now().Add(maxPoll).UnixMilli()}, nil
			}
			if l != nil || err != nil {
				return l, err
			}
		}
		until := time.UnixMilli(res.until)
		if res.yielded {
			until = yieldUntil
		}
		var wake <-chan struct{}
		var wait time.Duration
		if res.held {
			// The holder keeps the turnstile: block on it, and poll in case
			// it is frozen. A wake-up that finds the lease still taken means
			// we won the lock before the holder took it; after two in a row,
			// wait out one poll interval before trusting it again.
			wait, turnPoll = heldPoll, minTurnPoll
			if useless < 2 {
				wake = p.gate.wait()
			} else {
				useless = 0
			}
		} else {
			// Free, but another process has the turn; the turnstile is
			// likely free too, so poll until that process holds the lease.
			wait, heldPoll, useless = turnPoll, minPoll, 0
		}
		wait = min(wait, max(time.Until(until)+time.Millisecond, 0))
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			force = gateTaken
			if res.held {
				heldPoll = min(2*heldPoll, maxPoll)
			} else {
				turnPoll = min(2*turnPoll, maxPoll)
			}
			useless = 0
		case <-wake:
			useless++
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("xprocess: acquire: %w", context.Cause(ctx))
		case <-suspending:
			timer.Stop()
			return nil, ErrSuspended
		case <-p.ctx.Done():
			timer.Stop()
			return nil, ErrClosed
		}
		timer.Stop()
	}
}

// TryAcquire is Acquire without waiting: if another process holds the lease
// or has the next turn, it returns a [*LeaseExistsError]. It never claims a
// turn, and it gives the turn to a waiting process as Acquire does.
func (p *Process) TryAcquire(ctx context.Context) (*Lease, error) {
	if l, err := p.reenter(); l != nil || err != nil {
		return l, err
	}
	res, canWin, _, err := p.peek(ctx, p.gate.othersWaiting)
	if err != nil {
		return nil, err
	}
	if res.yielded {
		return nil, &LeaseExistsError{ExpiresAt: p.now().Add(yieldMax)}
	}
	if canWin {
		// Unlike Acquire, try the row even if the turnstile is taken (by
		// a transaction about to end, or by a frozen former holder).
		gate := p.gate.tryHold()
		var l *Lease
		res, l, err = p.attempt(ctx, false, gate)
		if l == nil && gate != nil {
			gate.drop()
		}
		if l != nil || err != nil {
			return l, err
		}
	}
	return nil, &LeaseExistsError{Holder: res.blocker, ExpiresAt: time.UnixMilli(res.until)}
}
