package xprocess

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Phase is the app's lifecycle phase (invariant 13).
type Phase int

const (
	// Active: all work runs.
	Active Phase = iota
	// Background: no new deferrable work starts; essential work runs.
	Background
	// Suspended: the lease is released, the OnSuspend hooks have run (the
	// store checkpoints and closes its connections there), and nothing new
	// starts.
	Suspended
)

func (ph Phase) String() string {
	switch ph {
	case Active:
		return "active"
	case Background:
		return "background"
	case Suspended:
		return "suspended"
	}
	return fmt.Sprintf("Phase(%d)", int(ph))
}

// Work says whether an operation may be put off.
type Work int

const (
	// Essential work runs in Active and Background.
	Essential Work = iota
	// Deferrable work runs only in Active.
	Deferrable
)

// Enter admits an operation of kind w under the current phase, or refuses
// it: [ErrSuspended] while Suspended (or suspending), [ErrBackground] for
// deferrable work in Background. Call exit when the operation is done;
// suspension waits for every admitted operation to exit. exit is idempotent.
func (p *Process) Enter(ctx context.Context, w Work) (exit func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, ErrClosed
	case p.phase == Suspended:
		return nil, ErrSuspended
	case p.phase == Background && w == Deferrable:
		return nil, ErrBackground
	}
	p.inflight++
	var once sync.Once
	return func() { once.Do(p.exit) }, nil
}

func (p *Process) exit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight--
	if p.inflight == 0 && p.drained != nil {
		close(p.drained)
		p.drained = nil
	}
}

// Phase returns the current phase.
func (p *Process) Phase() Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.phase
}

// OnSuspend registers a hook run, in registration order, after suspension
// has released the lease: the store checkpoints its WAL and closes its
// connections there. Hooks must leave the database usable again after the
// OnResume hooks run.
func (p *Process) OnSuspend(hook func(ctx context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onSuspend = append(p.onSuspend, hook)
}

// OnResume registers a hook run, in registration order, when the process
// leaves Suspended, before any new operation is admitted.
func (p *Process) OnResume(hook func(ctx context.Context) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onResume = append(p.onResume, hook)
}

// SetPhase moves the process to phase to.
//
// Entering Suspended refuses new operations at once, cancels a waiting
// Acquire, waits (until ctx is done) for admitted operations to exit, then
// releases the lease, drops the liveness lock (a suspended process must hold
// no file locks) and runs the OnSuspend hooks. If ctx ends first, new work
// stays refused and SetPhase may be called again to finish or to go back.
//
// Leaving Suspended retakes the liveness lock and runs the OnResume hooks; if
// a hook fails the process stays Suspended.
func (p *Process) SetPhase(ctx context.Context, to Phase) error {
	if to < Active || to > Suspended {
		return fmt.Errorf("xprocess: unknown phase %d", int(to))
	}
	select {
	case p.phaseSem <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-p.phaseSem }()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	from, suspended := p.phase, p.suspended
	switch {
	case to == Suspended && suspended:
		retry := p.suspendHooksFailed
		p.mu.Unlock()
		if retry {
			// A suspension whose hooks failed (its context ran out while
			// the store closed its files) is not done: run them again.
			return p.runSuspendHooks(ctx)
		}
		return nil
	case to == Suspended:
		if from != Suspended {
			close(p.suspending)
		}
		p.phase = Suspended
		drained := p.drainedLocked()
		p.mu.Unlock()
		select {
		case <-drained: // checked first: a done ctx must not win over drained operations
		default:
			select {
			case <-drained:
			case <-ctx.Done():
				return fmt.Errorf("xprocess: suspend: waiting for operations: %w", context.Cause(ctx))
			}
		}
		return p.suspend(ctx)
	case suspended:
		p.mu.Unlock()
		return p.resume(ctx, to)
	default:
		// Active and Background swap freely; a suspension cut short by its
		// context is abandoned here.
		if from == Suspended {
			p.suspending = make(chan struct{})
		}
		p.phase = to
		p.mu.Unlock()
		p.log.Info().Stringer("from", from).Stringer("to", to).Msg("phase changed")
		return nil
	}
}

func (p *Process) drainedLocked() chan struct{} {
	if p.inflight == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if p.drained == nil {
		p.drained = make(chan struct{})
	}
	return p.drained
}

// suspend releases the lease and the liveness lock and runs the hooks.
func (p *Process) suspend(ctx context.Context) error {
	p.rowSem <- struct{}{}
	p.mu.Lock()
	t := p.cur
	p.cur = nil
	p.suspended = true
	alive := p.alive
	p.alive = nil
	p.mu.Unlock()
	var err error
	if t != nil {
		err = p.finish(t, ErrSuspended)
	}
	<-p.rowSem
	p.gate.closeFiles()
	err = errors.Join(err, markGone(alive))
	err = errors.Join(err, p.runSuspendHooks(ctx))
	p.log.Info().Msg("phase changed to suspended")
	if err != nil {
		return fmt.Errorf("xprocess: suspend: %w", err)
	}
	return nil
}

// runSuspendHooks runs the OnSuspend hooks and records whether any failed,
// so that SetPhase(Suspended) again retries them.
func (p *Process) runSuspendHooks(ctx context.Context) error {
	p.mu.Lock()
	hooks := p.onSuspend
	p.mu.Unlock()
	var err error
	for _, hook := range hooks {
		err = errors.Join(err, hook(ctx))
	}
	p.mu.Lock()
	p.suspendHooksFailed = err != nil
	p.mu.Unlock()
	return err
}

// resume undoes suspend and enters phase to.
func (p *Process) resume(ctx context.Context, to Phase) error {
	alive, err := markAlive(p.aliveDir, p.holder)
	if err != nil {
		return fmt.Errorf("xprocess: resume: %w", err)
	}
	p.mu.Lock()
	hooks := p.onResume
	p.mu.Unlock()
	for _, hook := range hooks {
		if err := hook(ctx); err != nil {
			return errors.Join(fmt.Errorf("xprocess: resume: %w", err), markGone(alive))
		}
	}
	p.mu.Lock()
	p.alive = alive
	p.suspended = false
	p.suspendHooksFailed = false
	p.phase = to
	p.suspending = make(chan struct{})
	p.mu.Unlock()
	p.log.Info().Stringer("to", to).Msg("phase changed from suspended")
	return nil
}
