package xprocess

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/xolm/xolm/internal/flock"
	"github.com/xolm/xolm/internal/sqlitedb"
)

// DefaultDuration is how long a lease lasts without renewal unless
// Options.Duration says otherwise. A frozen holder blocks others for at most
// this long; renewing at a third of it costs one write a second.
const DefaultDuration = 3 * time.Second

// Waiters poll the row with a backoff from minPoll doubling to maxPoll, and
// always at the moment the blocking claim expires; the turnstile usually
// wakes them sooner.
const (
	minPoll = time.Millisecond
	maxPoll = 50 * time.Millisecond
)

// Options configure New.
type Options struct {
	// Role names the kind of process ("app", "nse"): 1 to MaxRoleLen ASCII
	// letters, digits, '.', '_' or '-'. Processes may share a role; each
	// instance still has its own identity.
	Role string
	// Duration is how long the lease lasts unrenewed; DefaultDuration if 0.
	// Every process using one database should use the same value.
	Duration time.Duration
	// RenewEvery is how often a held lease is extended; Duration/3 if 0.
	// It must be shorter than Duration.
	RenewEvery time.Duration
	// Logger receives lease events (taken, generation change, lost,
	// released). The zero Logger is silent.
	Logger zerolog.Logger
}

// A Process is this process instance's side of the lease on one database:
// its identity, its current holding, and its app phase. Its methods are safe
// for concurrent use. Do not call Acquire, TryAcquire or Release inside a
// write transaction of the same database: they write to it themselves.
type Process struct {
	db         *sqlitedb.DB     // constant
	holder     Holder           // constant
	id         string           // constant: holder.String()
	dur        time.Duration    // constant
	renewEvery time.Duration    // constant
	log        zerolog.Logger   // constant
	gate       *turnstile       // constant
	aliveDir   string           // constant: directory of liveness files
	now        func() time.Time // constant: wall clock
	renewed    func()           // constant: called after each renewal write; tests count them

	ctx    context.Context    // constant: cancelled by Close
	cancel context.CancelFunc // constant
	wg     sync.WaitGroup     // renewal goroutines

	waitSem  chan struct{} // one goroutine at a time runs the waiting loop
	rowSem   chan struct{} // serializes our writes that change who holds the row: attempts and release
	phaseSem chan struct{} // one SetPhase at a time

	mu        sync.Mutex
	cur       *tenure     // guarded by mu: the current holding, nil if none
	seen      seen        // guarded by mu
	closed    bool        // guarded by mu
	alive     *flock.File // guarded by mu: liveness lock; nil while suspended
	phase     Phase       // guarded by mu
	suspended bool        // guarded by mu: lease released for suspension
	// guarded by mu: an OnSuspend hook failed; SetPhase(Suspended) retries them
	suspendHooksFailed bool
	suspending         chan struct{}                     // guarded by mu: closed when suspension begins
	inflight           int                               // guarded by mu: operations between Enter and exit
	drained            chan struct{}                     // guarded by mu: closed when inflight reaches 0
	onSuspend          []func(ctx context.Context) error // guarded by mu
	onResume           []func(ctx context.Context) error // guarded by mu
	yieldSkip          int                               // guarded by mu: acquisitions left that do not yield, after a waiter let a yield time out
	yieldBack          int                               // guarded by mu: the next yieldSkip, doubling per timeout until another holder shows up
}

// seen is the (generation, data stamp) this process saw after its own last
// acquire or fenced write; any is false before the first acquisition.
type seen struct {
	gen, stamp int64
	any        bool
}

// New creates the lease table if needed and starts this process instance's
// side of the lease: a fresh holder identity, and a liveness lock that lets
// others take over at once if this process dies. Close it when done.
func New(db *sqlitedb.DB, opts Options) (*Process, error) {
	h, err := newHolder(opts.Role)
	if err != nil {
		return nil, err
	}
	if opts.Duration <= 0 {
		opts.Duration = DefaultDuration
	}
	if opts.RenewEvery <= 0 {
		opts.RenewEvery = opts.Duration / 3
	}
	if opts.RenewEvery >= opts.Duration || opts.Duration < 10*time.Millisecond {
		return nil, fmt.Errorf("xprocess: renewal every %v cannot keep a %v lease", opts.RenewEvery, opts.Duration)
	}
	if err := ensureTable(db); err != nil {
		return nil, err
	}
	dir := livenessDir(db.Path())
	alive, err := markAlive(dir, h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Process{
		db: db, holder: h, id: h.String(), dur: opts.Duration, renewEvery: opts.RenewEvery,
		log:  opts.Logger.With().Str("holder", h.String()).Logger(),
		gate: newTurnstile(db.Path()), aliveDir: dir, now: time.Now, renewed: func() {},
		ctx: ctx, cancel: cancel,
		waitSem: make(chan struct{}, 1), rowSem: make(chan struct{}, 1), phaseSem: make(chan struct{}, 1),
		alive: alive, suspending: make(chan struct{}),
	}, nil
}

// Holder returns this instance's identity.
func (p *Process) Holder() Holder { return p.holder }

// reenter returns a new hold on the current tenure if it is still valid.
func (p *Process) reenter() (*Lease, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.usableLocked(); err != nil {
		return nil, err
	}
	t := p.cur
	if t == nil || t.lost || p.now().UnixMilli() >= t.expires {
		return nil, nil
	}
	t.count++
	return &Lease{p: p, t: t, stamp: p.seen.stamp}, nil
}

func (p *Process) usableLocked() error {
	if p.closed {
		return ErrClosed
	}
	if p.suspended {
		return ErrSuspended
	}
	return nil
}

// peek reads the row and judges it with outlook. When the row names this
// process and is free, yield (if not nil) decides whether to stand aside for
// a waiting process instead (res.yielded).
func (p *Process) peek(ctx context.Context, yield func() bool) (res attemptResult, canWin, canClaim bool, err error) {
	var row leaseRow
	err = p.db.Read(ctx, "xprocess: peek", func(tx *sqlitedb.Tx) error {
		var err error
		row, err = readRow(tx)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return res, true, false, nil
	}
	if err != nil {
		return res, false, false, fmt.Errorf("xprocess: acquire: %w", err)
	}
	c := newClock(p.now(), p.dur)
	if yield != nil && row.holder == p.id && !c.live(row.expires, c.horizon) && yield() {
		return attemptResult{yielded: true}, false, false, nil
	}
	res, canWin, canClaim = outlook(row, p.id, c, p.dead)
	return res, canWin, canClaim, nil
}

func (p *Process) dead(id string) bool { return holderDead(p.aliveDir, id) }

// attempt makes one try at the row in a write transaction and, on success,
// starts a tenure, holding the turnstile with gate if that is not nil. The
// caller drops gate if no Lease comes back.
func (p *Process) attempt(ctx context.Context, wantTurn bool, gate *gateHold) (attemptResult, *Lease, error) {
	select {
	case p.rowSem <- struct{}{}:
	case <-ctx.Done():
		return attemptResult{}, nil, fmt.Errorf("xprocess: acquire: %w", context.Cause(ctx))
	}
	defer func() { <-p.rowSem }()
	p.mu.Lock()
	err := p.usableLocked()
	p.mu.Unlock()
	if err != nil {
		return attemptResult{}, nil, err
	}
	var res attemptResult
	err = p.db.Write(ctx, "xprocess: acquire", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		var err error
		c := newClock(p.now(), p.dur)
		res, err = tryRow(tx, p.id, c, p.dur, wantTurn, p.dead)
		return err
	})
	if err != nil && ctx.Err() != nil {
		// database/sql reports a transaction cut short by its context as
		// merely closed; say why.
		err = context.Cause(ctx)
	}
	if err != nil {
		return res, nil, fmt.Errorf("xprocess: acquire: %w", err)
	}
	if !res.ok {
		return res, nil, nil
	}
	return res, p.begin(res, gate), nil
}

// begin starts a tenure for a successful attempt, with gate as its
// turnstile hold if not nil; the caller holds rowSem.
func (p *Process) begin(res attemptResult, gate *gateHold) *Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.cur; old != nil && !old.lost {
		if old.gen == res.generation {
			if gate != nil {
				gate.drop() // the tenure has its own
			}
			// The tenure had run out locally (or a TryAcquire raced a
			// reentrant path) but nobody took the row: it was extended.
			old.count++
			old.expires = res.expires
			select {
			case old.moved <- struct{}{}:
			default: // a poke is already pending
			}
			return &Lease{p: p, t: old, stamp: p.seen.stamp}
		}
		// Another holder came and went in between: the old tenure's writes
		// must fail.
		old.lost = true
		old.cancel(fmt.Errorf("%w: generation %d followed", ErrLeaseLost, res.generation))
		old.gate.drop()
	}
	prev := p.seen
	now := seen{gen: res.generation, stamp: res.dataStamp, any: true}
	p.seen = now
	ctx, cancel := context.WithCancelCause(p.ctx)
	t := &tenure{gen: res.generation, ctx: ctx, cancel: cancel, done: make(chan struct{}), moved: make(chan struct{}, 1),
		count: 1, expires: res.expires}
	if gate != nil {
		p.gate.adopt(gate)
		t.gate = gate
	} else {
		t.gate = p.gate.hold()
	}
	p.cur = t
	p.wg.Add(1)
	go p.renew(t)
	changed := prev != now
	p.log.Debug().Int64("generation", res.generation).Bool("changed", changed).Msg("lease taken")
	if !prev.any || prev.gen != res.generation {
		p.yieldSkip, p.yieldBack = 0, 0 // others do take their turns
		ev := p.log.Info().Int64("from", prev.gen).Int64("to", res.generation)
		if res.tookOver != "" {
			ev = ev.Str("took_over_from_dead", res.tookOver)
		}
		ev.Msg("lease generation changed")
	}
	return &Lease{p: p, t: t, stamp: res.dataStamp, changed: changed}
}

// Close releases the lease if held, stops renewal and drops this instance's
// liveness lock. Outstanding Leases become lost. Close is idempotent and
// returns the first error.
func (p *Process) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.rowSem <- struct{}{}
	p.mu.Lock()
	t := p.cur
	p.cur = nil
	p.mu.Unlock()
	var err error
	if t != nil {
		err = p.finish(t, ErrClosed)
	}
	<-p.rowSem
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	alive := p.alive
	p.alive = nil
	p.mu.Unlock()
	p.gate.closeFiles()
	return errors.Join(err, markGone(alive))
}
