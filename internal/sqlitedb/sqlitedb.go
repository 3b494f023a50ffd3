// Package sqlitedb opens a SQLite file the way xolm's store and lease need it:
// WAL, one write connection whose transactions begin with BEGIN IMMEDIATE, a
// small pool of query-only read connections, secure_delete, a bounded WAL, and a
// durability choice per write transaction.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Durability says how far a write transaction's commit must reach before
// Write returns.
type Durability int

const (
	// Normal commits are atomic and survive a process crash, but may be lost
	// on power failure until the next checkpoint (WAL with synchronous=NORMAL).
	// Right for state that can be re-derived or re-received: a received
	// message can be fetched again, so its commit need not be synced.
	Normal Durability = iota
	// Synced commits are fsynced before Write returns (synchronous=FULL).
	// Required before anything derived from the transaction leaves the device,
	// e.g. an advanced sending ratchet before its ciphertext is sent.
	Synced
)

// BusyTimeout is how long a statement waits for another process's write lock
// before failing with SQLITE_BUSY. The lease keeps write transactions short,
// so waiting longer than this means something is wrong.
const BusyTimeout = 10 * time.Second

// JournalSizeLimit bounds the WAL file left after a checkpoint.
const JournalSizeLimit = 4 << 20

// DefaultReaders is the default number of read connections.
const DefaultReaders = 2

// Options configure Open.
type Options struct {
	// Readers is the number of query-only connections; DefaultReaders if 0.
	Readers int
	// OnSlowLock, if set, is called when a write transaction waited longer
	// than SlowLock for the write lock, with its why label.
	OnSlowLock func(why string, waited time.Duration)
	// SlowLock is the threshold for OnSlowLock; 100 ms if 0.
	SlowLock time.Duration
}

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("sqlitedb: database is closed")

// DB is an open SQLite file.
type DB struct {
	path string
	opts Options

	wDSN, rDSN string // constant

	// poolMu guards w and r: held for reading by every operation, for
	// writing by Suspend and Resume, which close and reopen the pools.
	poolMu sync.RWMutex
	w      *sql.DB // one connection; every transaction is BEGIN IMMEDIATE
	r      *sql.DB // query_only connections
	wStmts *stmtCache
	rStmts *stmtCache

	mu        sync.Mutex // guards synced, closed and suspended
	synced    bool       // the writer connection is in synchronous=FULL
	closed    bool
	suspended bool
	writeSem  chan struct{} // context-aware lock around the writer: a plain mutex cannot be abandoned
}

// ErrSuspended is returned by every method while the connections are closed
// by Suspend.
var ErrSuspended = errors.New("sqlitedb: connections are suspended")

func dsn(path string, pragmas []string, txlock string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", txlock)
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating if needed) the SQLite file at path.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.Readers <= 0 {
		opts.Readers = DefaultReaders
	}
	if opts.SlowLock <= 0 {
		opts.SlowLock = 100 * time.Millisecond
	}
	common := []string{
		fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()),
		"foreign_keys(1)",
		"secure_delete(1)",
	}
	d := &DB{
		path: path,
		opts: opts,
		wDSN: dsn(path, append(common,
			"journal_mode(WAL)",
			"synchronous(NORMAL)",
			fmt.Sprintf("journal_size_limit(%d)", JournalSizeLimit),
		), "immediate"),
		rDSN:     dsn(path, append(common, "query_only(1)"), "deferred"),
		writeSem: make(chan struct{}, 1),
	}
	if err := d.openPools(ctx); err != nil {
		return nil, fmt.Errorf("sqlitedb: open %s: %w", path, err)
	}
	return d, nil
}

// openPools opens the writer and the readers. The caller holds poolMu or
// has the only reference to d.
func (d *DB) openPools(ctx context.Context) error {
	w, err := sql.Open("sqlite", d.wDSN)
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Touch the writer first: it sets WAL mode, which readers need.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return err
	}
	r, err := sql.Open("sqlite", d.rDSN)
	if err != nil {
		w.Close()
		return err
	}
	r.SetMaxOpenConns(d.opts.Readers)
	r.SetMaxIdleConns(d.opts.Readers)
	r.SetConnMaxIdleTime(0)
	d.w, d.r = w, r
	d.wStmts, d.rStmts = newStmtCache(w), newStmtCache(r)
	d.synced = false
	return nil
}

// Suspend checkpoints the WAL into the database file, truncates it and closes
// every connection, so that the process holds no file locks (iOS terminates a
// suspended process that does). Until Resume, every method fails with
// ErrSuspended. Suspending twice is a no-op.
func (d *DB) Suspend(ctx context.Context) error {
	select {
	case d.writeSem <- struct{}{}: // no write in flight; taken first, before a done ctx can win
	default:
		select {
		case d.writeSem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() { <-d.writeSem }()
	d.poolMu.Lock() // no read in flight
	defer d.poolMu.Unlock()
	d.mu.Lock()
	if d.closed || d.suspended {
		d.mu.Unlock()
		return nil
	}
	d.suspended = true
	d.mu.Unlock()
	_, cerr := d.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return errors.Join(cerr, d.closePools())
}

// Resume reopens the connections closed by Suspend.
func (d *DB) Resume(ctx context.Context) error {
	d.poolMu.Lock()
	defer d.poolMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if !d.suspended {
		return nil
	}
	if err := d.openPools(ctx); err != nil {
		return fmt.Errorf("sqlitedb: resume: %w", err)
	}
	d.suspended = false
	return nil
}

// Path returns the file's path.
func (d *DB) Path() string { return d.path }

// Write runs fn in one BEGIN IMMEDIATE transaction on the write connection and
// commits if fn returns nil. why labels the transaction for diagnostics.
// Rollback is always deferred and idempotent.
func (d *DB) Write(ctx context.Context, why string, dur Durability, fn func(tx *Tx) error) error {
	return d.WriteThen(ctx, why, dur, fn, nil)
}

// WriteThen is Write with a hook that runs after a successful commit while
// the write connection is still held, so that hooks of successive
// transactions run in commit order (the store publishes to its cache there).
func (d *DB) WriteThen(ctx context.Context, why string, dur Durability, fn func(tx *Tx) error, onCommit func()) error {
	start := time.Now()
	select {
	case d.writeSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("sqlitedb: %s: %w", why, ctx.Err())
	}
	defer func() { <-d.writeSem }()
	d.poolMu.RLock()
	defer d.poolMu.RUnlock()
	if err := d.usable(); err != nil {
		return err
	}
	if err := d.setSyncedLocked(ctx, dur == Synced); err != nil {
		return fmt.Errorf("sqlitedb: %s: %w", why, err)
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitedb: %s: begin: %w", why, err)
	}
	t := &Tx{tx: tx, ctx: ctx, cache: d.wStmts}
	defer func() {
		// Rollback is idempotent (a no-op after Commit). Then, still holding
		// the writer, its connection is idle: statements that ran unprepared
		// are prepared on it for the next transactions.
		tx.Rollback()
		d.wStmts.prepare(context.WithoutCancel(ctx), t.missed)
	}()
	if waited := time.Since(start); waited > d.opts.SlowLock && d.opts.OnSlowLock != nil {
		d.opts.OnSlowLock(why, waited)
	}
	if err := fn(t); err != nil {
		return err
	}
	if t.failed != nil {
		return fmt.Errorf("sqlitedb: %s: a statement failed, not committing: %w", why, t.failed)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitedb: %s: commit: %w", why, err)
	}
	if onCommit != nil {
		onCommit()
	}
	return nil
}

// setSyncedLocked switches the writer between synchronous=FULL and NORMAL
// outside any transaction; it costs a statement only when the mode changes.
func (d *DB) setSyncedLocked(ctx context.Context, synced bool) error {
	d.mu.Lock()
	cur := d.synced
	d.mu.Unlock()
	if cur == synced {
		return nil
	}
	mode := "NORMAL"
	if synced {
		mode = "FULL"
	}
	if _, err := d.w.ExecContext(ctx, "PRAGMA synchronous="+mode); err != nil {
		return err
	}
	d.mu.Lock()
	d.synced = synced
	d.mu.Unlock()
	return nil
}

// Read runs fn in a read transaction on a query-only connection: every read
// in fn sees one consistent snapshot.
func (d *DB) Read(ctx context.Context, why string, fn func(tx *Tx) error) error {
	d.poolMu.RLock()
	defer d.poolMu.RUnlock()
	if err := d.usable(); err != nil {
		return err
	}
	tx, err := d.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlitedb: %s: begin: %w", why, err)
	}
	t := &Tx{tx: tx, ctx: ctx, cache: d.rStmts}
	err = fn(t)
	tx.Rollback()
	d.rStmts.prepare(context.WithoutCancel(ctx), t.missed)
	return err
}

// Checkpoint copies the WAL into the database file and truncates it.
func (d *DB) Checkpoint(ctx context.Context) error {
	d.poolMu.RLock()
	defer d.poolMu.RUnlock()
	if err := d.usable(); err != nil {
		return err
	}
	var busy, logFrames, done int
	err := d.w.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil {
		return fmt.Errorf("sqlitedb: checkpoint: %w", err)
	}
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and returns its messages, or nil
// when the file is ok.
func (d *DB) IntegrityCheck(ctx context.Context) ([]string, error) {
	d.poolMu.RLock()
	defer d.poolMu.RUnlock()
	if err := d.usable(); err != nil {
		return nil, err
	}
	rows, err := d.r.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(msgs) == 1 && strings.EqualFold(msgs[0], "ok") {
		return nil, nil
	}
	return msgs, nil
}

// closePools closes the cached statements and the connections.
func (d *DB) closePools() error {
	return errors.Join(d.wStmts.close(), d.rStmts.close(), d.r.Close(), d.w.Close())
}

// usable reports ErrClosed or ErrSuspended, or nil.
func (d *DB) usable() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.suspended:
		return ErrSuspended
	}
	return nil
}

// Close closes every connection. It is idempotent.
func (d *DB) Close() error {
	d.poolMu.Lock()
	defer d.poolMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.suspended {
		return nil
	}
	return d.closePools()
}
