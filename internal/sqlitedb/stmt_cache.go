package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// MaxCachedStatements bounds a pool's statement cache. xolm's SQL is
// constant, a few dozen statements in all; reaching the bound means a caller
// is building SQL dynamically, and such statements are then prepared per use
// instead of cached.
const MaxCachedStatements = 256

// stmtCache holds statements prepared once on a pool. database/sql prepares
// a statement on each of the pool's connections the first time a
// transaction on that connection uses it, and reuses it afterwards, so SQLite
// parses each statement once per connection instead of once per use.
type stmtCache struct {
	pool *sql.DB // constant

	mu sync.Mutex
	m  map[string]*sql.Stmt // guarded by mu
}

func newStmtCache(pool *sql.DB) *stmtCache {
	return &stmtCache{pool: pool, m: make(map[string]*sql.Stmt)}
}

// lookup returns the cached statement for query, or nil.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// prepare caches statements for queries that ran unprepared. It must run
// outside any transaction of this process on the pool: preparing takes a
// connection, and the writer pool has only one.
func (c *stmtCache) prepare(ctx context.Context, queries []string) {
	for _, q := range queries {
		c.mu.Lock()
		_, ok := c.m[q]
		full := len(c.m) >= MaxCachedStatements
		c.mu.Unlock()
		if ok || full {
			continue
		}
		st, err := c.pool.PrepareContext(ctx, q)
		if err != nil {
			continue // it ran unprepared once; it will again
		}
		c.mu.Lock()
		if _, ok := c.m[q]; ok {
			st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// Tx is a transaction on one of the database's connections. Its Exec, Query
// and QueryRow run cached prepared statements; pass constant SQL. A query's
// first run is unprepared; it is prepared for later transactions once this
// one has let go of its connection.
type Tx struct {
	tx     *sql.Tx
	ctx    context.Context
	cache  *stmtCache
	missed []string // queries to prepare after the transaction
	// failed is the first error of an Exec or Query. A write transaction
	// with a failed statement never commits, even if the caller went on as
	// if it had not failed: a step is all or nothing.
	failed error
}

// record keeps the first statement error.
func (t *Tx) record(err error) error {
	if err != nil && t.failed == nil {
		t.failed = err
	}
	return err
}

func (t *Tx) stmt(query string) (*sql.Stmt, error) {
	st := t.cache.lookup(query)
	if st == nil {
		t.missed = append(t.missed, query)
		return nil, nil
	}
	return t.tx.StmtContext(t.ctx, st), nil
}

// Exec runs a statement that returns no rows.
func (t *Tx) Exec(query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	var res sql.Result
	if st == nil {
		res, err = t.tx.ExecContext(t.ctx, query, args...)
	} else {
		res, err = st.ExecContext(t.ctx, args...)
	}
	return res, t.record(err)
}

// Query runs a statement that returns rows.
func (t *Tx) Query(query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if st == nil {
		rows, err = t.tx.QueryContext(t.ctx, query, args...)
	} else {
		rows, err = st.QueryContext(t.ctx, args...)
	}
	return rows, t.record(err)
}

// QueryRow runs a statement that returns at most one row; errors surface
// from Scan.
func (t *Tx) QueryRow(query string, args ...any) *sql.Row {
	st, err := t.stmt(query)
	if err != nil || st == nil {
		// A failed prepare is reported by the unprepared query's Scan.
		return t.tx.QueryRowContext(t.ctx, query, args...)
	}
	return st.QueryRowContext(t.ctx, args...)
}

// Context returns the context the transaction runs under.
func (t *Tx) Context() context.Context { return t.ctx }
