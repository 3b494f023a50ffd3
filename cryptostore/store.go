// Package cryptostore keeps xolm's crypto state in one SQLite file that several
// processes of one app share (the app, a notification extension, a second
// window), with an in-memory cache that is only ever an accelerator.
//
// # Transactions
//
// Every read and write happens in a transaction taken under the
// cross-process lease (package xprocess): [Store.Update] for a protocol step
// that changes state, [Store.View] for reads. Taking the lease yields its
// generation; when it differs from the last this process saw, or on the
// process's first transaction, the cache is dropped before anything is read.
// Every write transaction checks, inside the transaction, that the lease still
// names this process and generation, and aborts with [ErrLeaseLost]
// otherwise. Values read in a transaction are copies: a step changes them and
// puts them back, and the cache sees new values only after the commit.
//
// # At rest
//
// Secret values (accounts, keys, sessions) are sealed with XChaCha20-Poly1305
// under the store key, bound to their table, row key and schema version: a row
// copied onto another key, or a flipped byte, is reported as a
// [*CorruptRowError] naming both. The file uses WAL, secure_delete, and a
// durability chosen per transaction (see [Durability]).
package cryptostore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/xprocess"
)

// Durability says how far a commit must reach before Update returns.
type Durability = sqlitedb.Durability

const (
	// Normal commits survive a crash of the process but not necessarily a
	// power loss. Right for receive-side steps: a lost commit means a message
	// is processed again, and its duplicate check and one-time key are rolled
	// back with it.
	Normal = sqlitedb.Normal
	// Synced commits are on stable storage when Update returns. Required
	// before a ciphertext leaves the device: an advanced sending ratchet must
	// never be rolled back after its message was sent (DESIGN.md invariant 6).
	Synced = sqlitedb.Synced
)

// Errors of the lease and phases, re-exported for callers of this package.
var (
	ErrLeaseLost = xprocess.ErrLeaseLost
	ErrSuspended = xprocess.ErrSuspended
)

// ErrReadOnly is returned by a write attempted inside [Store.View].
var ErrReadOnly = errors.New("cryptostore: write in a read-only transaction")

// Options configure [Open].
type Options struct {
	// Key seals every secret value. Required; keep it in the platform's
	// keychain. A store opened with another key reports its rows as corrupt.
	Key *[32]byte
	// Role names this process in the lease holder identity: "app", "nse", …
	Role string
	// NoCache makes every read go to SQLite.
	NoCache bool
	// CacheSize bounds each cache table; DefaultCacheSize if 0.
	CacheSize int
	// Logger receives structured logs; silent by default.
	Logger zerolog.Logger
	// Lease configures the cross-process lease; Role and Logger are filled in.
	Lease xprocess.Options
	// Now is the clock for timestamps; time.Now if nil.
	Now func() time.Time

	// InsecureSkipCacheInvalidation keeps cache entries across lease
	// generations. It breaks DESIGN.md invariant 1 and exists only to show,
	// in tests and the demo, the stale-session failure the store prevents.
	InsecureSkipCacheInvalidation bool
}

// Store is one open store file. It is safe for concurrent use by the
// goroutines of one process; other processes coordinate through the lease.
type Store struct {
	db    *sqlitedb.DB      // constant
	proc  *xprocess.Process // constant
	key   [32]byte          // constant
	cache *cache            // constant
	log   zerolog.Logger    // constant
	now   func() time.Time  // constant
}

// Open opens the store at path, creating it if needed, and migrates its
// schema. A file that is not an xolm store, or one written by a newer schema,
// is refused and left untouched.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.Key == nil {
		return nil, errors.New("cryptostore: Options.Key is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	db, err := sqlitedb.Open(ctx, path, sqlitedb.Options{
		OnSlowLock: func(why string, waited time.Duration) {
			opts.Logger.Warn().Str("why", why).Dur("waited", waited).Msg("slow write lock")
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrOpen, path, err)
	}
	var applied []int
	err = db.Write(ctx, "migrate", sqlitedb.Synced, func(tx *sqlitedb.Tx) error {
		applied, err = migrateTx(ctx, tx, SchemaVersion, xprocess.Migrate)
		return err
	})
	if err != nil {
		db.Close()
		if errors.Is(err, ErrNotStore) || errors.As(err, new(*SchemaTooNewError)) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: migrate: %w", ErrOpen, path, err)
	}
	for _, v := range applied {
		opts.Logger.Info().Int("version", v).Msg("migration run")
	}
	lopts := opts.Lease
	lopts.Role = opts.Role
	lopts.Logger = opts.Logger
	proc, err := xprocess.New(db, lopts)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %s: lease: %w", ErrOpen, path, err)
	}
	// Suspended: the lease is released first (by xprocess), then the WAL is
	// checkpointed and every connection closed, so the process holds no file
	// locks; resuming reopens them.
	proc.OnSuspend(db.Suspend)
	proc.OnResume(db.Resume)
	s := &Store{
		db:    db,
		proc:  proc,
		key:   *opts.Key,
		cache: newCache(opts.CacheSize, opts.NoCache, opts.InsecureSkipCacheInvalidation),
		log:   opts.Logger,
		now:   opts.Now,
	}
	return s, nil
}

// checkHeader refuses a file that exists, is not empty and is not SQLite,
// before the driver can touch it.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrOpen, err)
	}
	defer f.Close()
	var hdr [16]byte
	n, _ := f.Read(hdr[:])
	if n == 0 {
		return nil
	}
	if n < 16 || string(hdr[:]) != "SQLite format 3\x00" {
		return fmt.Errorf("%w: %s is not a SQLite database", ErrNotStore, path)
	}
	return checkForeign(path)
}

// checkForeign looks at an existing SQLite file read-only, before anything
// (even switching it to WAL) writes to it, and refuses a database that is not
// an xolm store.
func checkForeign(path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return fmt.Errorf("cryptostore: open: %w", err)
	}
	defer db.Close()
	var appID, objects int
	err = db.QueryRow("PRAGMA application_id").Scan(&appID)
	if err == nil {
		err = db.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&objects)
	}
	if err != nil {
		return classifyOpenError(path, err)
	}
	if appID != applicationID && objects > 0 {
		return fmt.Errorf("%w: %s holds another application's database", ErrNotStore, path)
	}
	return nil
}

// classifyOpenError tells a file that is not a database (ErrNotStore) from
// one that cannot be opened here (ErrOpen: permissions, read-only directory).
func classifyOpenError(path string, err error) error {
	var coded interface{ Code() int }
	if errors.As(err, &coded) && coded.Code()&0xff == sqliteNotADB {
		return fmt.Errorf("%w: %s: %v", ErrNotStore, path, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrOpen, path, err)
}

// sqliteNotADB is SQLite's primary result code SQLITE_NOTADB.
const sqliteNotADB = 26

// Process returns the store's lease and phase controller, for holding the
// lease across several transactions and for app phase changes.
func (s *Store) Process() *xprocess.Process { return s.proc }

// Close releases the lease and closes the file. It is idempotent.
func (s *Store) Close() error {
	return errors.Join(s.proc.Close(), s.db.Close())
}

// Invalidate drops every cached value. The store does this itself whenever the
// lease changes hands; callers rarely need it.
func (s *Store) Invalidate() { s.cache.Invalidate() }

// Update runs fn as one write transaction under the lease: either all of its
// changes commit, and only then reach the cache, or none do. why labels the
// transaction in logs. It fails with ErrLeaseLost if another process took the
// lease since it was acquired, and with ErrSuspended in the Suspended phase.
func (s *Store) Update(ctx context.Context, why string, dur Durability, fn func(tx *Tx) error) error {
	return s.run(ctx, why, true, dur, fn)
}

// View runs fn as a read transaction under the lease, on one consistent
// snapshot. Writes inside it fail with ErrReadOnly.
func (s *Store) View(ctx context.Context, why string, fn func(tx *Tx) error) error {
	return s.run(ctx, why, false, Normal, fn)
}

func (s *Store) run(ctx context.Context, why string, write bool, dur Durability, fn func(tx *Tx) error) error {
	exit, err := s.proc.Enter(ctx, xprocess.Essential)
	if err != nil {
		return err
	}
	defer exit()
	t := &Tx{s: s, ctx: ctx, write: write}
	// begin runs first inside the transaction: it drops the cache if the lease
	// says another process may have moved state on, before anything is read.
	begin := func(sqlTx *sqlitedb.Tx, gen int64, changed bool) {
		if s.cache.observe(uint64(gen), changed) {
			s.log.Debug().Int64("generation", gen).Msg("cache invalidated")
		}
		t.tx = sqlTx
		t.gen, t.seq = s.cache.begin()
		t.onCommit = t.onCommit[:0]
		t.written.Clear()
		t.olmCounts.Clear()
	}
	if !write {
		return s.db.Read(ctx, why, func(sqlTx *sqlitedb.Tx) error {
			t.tx = sqlTx
			if s.cache.disabled { // without a cache there is nothing to check the generation for
				return fn(t)
			}
			// Sample the publication sequence before Observe's read fixes the
			// snapshot: a commit published in between makes this snapshot
			// older than the cache, and then nothing read here is put.
			seq0 := s.cache.sequence()
			gen, changed, err := s.proc.Observe(sqlTx)
			if err != nil {
				return err
			}
			if testHookViewSnapshot != nil {
				testHookViewSnapshot()
			}
			t.gen, t.seq = s.cache.observeView(seq0, uint64(gen), changed)
			return fn(t)
		})
	}
	if testHookBeforeWrite != nil {
		testHookBeforeWrite()
	}
	err = s.proc.Write(ctx, why, dur, func(sqlTx *sqlitedb.Tx, gen int64, changed bool) error {
		begin(sqlTx, gen, changed)
		return fn(t)
	}, func() {
		// Still holding the writer: publications run in commit order.
		s.cache.publish(t.onCommit)
	})
	if errors.Is(err, ErrLeaseLost) {
		s.cache.Invalidate()
	}
	return err
}

// testHookBeforeWrite runs between taking the lease and the write
// transaction: tests use it to move the lease on behind a writer's back, as
// a process frozen at that point would experience.
var testHookBeforeWrite func()

// testHookViewSnapshot runs in a read transaction right after its snapshot
// is pinned: tests commit from another goroutine there.
var testHookViewSnapshot func()

// nowMillis returns the store clock in Unix milliseconds.
func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }
