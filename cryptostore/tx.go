package cryptostore

import (
	"context"
	"database/sql"
	"errors"
	"github.com/xolm/xolm/internal/smallmap"
	"github.com/xolm/xolm/internal/sqlitedb"
)

// Tx is one transaction of a [Store]: a protocol step. Values it returns are
// the caller's copies; changes reach the store through its Put methods and
// reach the cache only after the commit. Reads see the transaction's own
// writes. A Tx must not be used after the
// function it was passed to returns, nor by several goroutines.
type Tx struct {
	s     *Store
	ctx   context.Context
	tx    *sqlitedb.Tx
	write bool   // an Update, not a View
	gen   uint64 // the generation cache entries must carry
	seq   uint64 // the cache's publication sequence when the transaction began

	onCommit []func() // cache publications, run in order after the commit
	// written names the cache entries this transaction changed. The cache
	// sees a change only after the commit, so until then reads of these
	// entries go to SQLite, which holds the transaction's own writes.
	// Like olmCounts, it allocates only for a second entry: most steps
	// change one.
	written smallmap.Map[cacheEntry, struct{}]
	// olmCounts holds, for senders whose sessions this transaction read,
	// how many sessions they have in its view; a put that inserts a
	// session needs no prune query while the count stays under the limit.
	// A write the count does not follow removes the sender.
	olmCounts smallmap.Map[string, int]
}

// cacheEntry names one entry of one cache table: its key, and for a table
// keyed by two strings (inbound group sessions: room, session) the second.
type cacheEntry struct {
	table, key, sub string
}

// wrote records that the transaction changed a cached entry.
func (t *Tx) wrote(e cacheEntry) { t.written.Set(e, struct{}{}) }

// changed reports whether the transaction changed the entry: its cached
// value, if any, is then older than the transaction's view.
func (t *Tx) changed(e cacheEntry) bool {
	_, ok := t.written.Get(e)
	return ok
}

// afterCommit schedules a cache publication for after a successful commit.
func (t *Tx) afterCommit(f func()) {
	if !t.s.cache.disabled {
		t.onCommit = append(t.onCommit, f)
	}
}

// cacheRead puts values read from SQLite into the cache. In a View they are
// committed state of the current generation, put at once unless a commit was
// published meanwhile. In an Update they may include the transaction's own
// uncommitted writes, so they wait for the commit.
func (t *Tx) cacheRead(put func()) {
	if t.s.cache.disabled {
		return
	}
	if t.write {
		t.onCommit = append(t.onCommit, put)
		return
	}
	t.s.cache.putIfCurrent(t.seq, t.gen, put)
}

func (t *Tx) checkWrite() error {
	if !t.write {
		return ErrReadOnly
	}
	return nil
}

// corrupt wraps an unsealing failure with the row that failed.
func corrupt(table, key string, err error) error {
	return &CorruptRowError{Table: table, Key: key, Err: err}
}

// noRows maps sql.ErrNoRows to ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
