package xprocess

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
)

// env is one database file that several Process values share, each through
// its own connections, as separate OS processes would.
type env struct {
	t    *testing.T
	path string
}

func newEnv(t *testing.T) *env {
	return &env{t: t, path: filepath.Join(t.TempDir(), "store.db")}
}

func (e *env) db() *sqlitedb.DB {
	e.t.Helper()
	db, err := sqlitedb.Open(context.Background(), e.path, sqlitedb.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

func (e *env) process(role string, opts ...func(*Options)) *Process {
	e.t.Helper()
	o := Options{Role: role}
	for _, f := range opts {
		f(&o)
	}
	p, err := New(e.db(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { p.Close() })
	return p
}

// slowRenewal makes renewal rare, so that a test can expire the row by hand
// without the renewal goroutine putting it back. The duration stays the
// default: every process on one database must use the same one.
func slowRenewal(o *Options) {
	o.RenewEvery = DefaultDuration - 100*time.Millisecond
}

func (e *env) row() leaseRow {
	e.t.Helper()
	db := e.db()
	var r leaseRow
	err := db.Read(context.Background(), "row", func(tx *sqlitedb.Tx) error {
		var err error
		r, err = readRow(tx)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) exec(query string, args ...any) {
	e.t.Helper()
	err := e.db().Write(context.Background(), "test", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		_, err := tx.Exec(query, args...)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func acquire(t *testing.T, p *Process) *Lease {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustHeld(t *testing.T, p *Process) *LeaseExistsError {
	t.Helper()
	l, err := p.TryAcquire(context.Background())
	if err == nil {
		l.Release()
		t.Fatal("TryAcquire succeeded while another process held the lease")
	}
	var held *LeaseExistsError
	if !errors.As(err, &held) || !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("TryAcquire error = %v, want a *LeaseExistsError matching ErrLeaseHeld", err)
	}
	return held
}

// write runs a fenced write transaction that also inserts v into a table t.
func write(p *Process, l *Lease, v int) error {
	return p.db.Write(context.Background(), "test write", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		if _, err := tx.Exec("CREATE TABLE IF NOT EXISTS t(v INTEGER)"); err != nil {
			return err
		}
		if _, err := tx.Exec("INSERT INTO t VALUES (?)", v); err != nil {
			return err
		}
		return l.Fence(tx)
	})
}

func (e *env) values() []int {
	e.t.Helper()
	var vs []int
	err := e.db().Read(context.Background(), "values", func(tx *sqlitedb.Tx) error {
		rows, err := tx.Query("SELECT v FROM t ORDER BY rowid")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				return err
			}
			vs = append(vs, v)
		}
		return rows.Err()
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return vs
}

func TestNewRejectsBadOptions(t *testing.T) {
	e := newEnv(t)
	db := e.db()
	for _, o := range []Options{
		{Role: ""},
		{Role: "../etc"},
		{Role: "app", Duration: time.Second, RenewEvery: time.Second},
	} {
		if p, err := New(db, o); err == nil {
			p.Close()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestCloseIsIdempotentAndLosesTheLease(t *testing.T) {
	e := newEnv(t)
	p := e.process("app")
	l := acquire(t, p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if !l.Lost() || !errors.Is(context.Cause(l.Context()), ErrClosed) {
		t.Fatalf("lease after Close: lost %v, cause %v", l.Lost(), context.Cause(l.Context()))
	}
	if err := write(p, l, 1); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("write after Close = %v, want ErrLeaseLost", err)
	}
	if _, err := p.Acquire(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close = %v", err)
	}
	if r := e.row(); r.expires != 0 {
		t.Fatalf("Close left the row held until %d", r.expires)
	}
	other := e.process("app")
	acquire(t, other).Release()
}

func TestAcquireHonoursContext(t *testing.T) {
	e := newEnv(t)
	holder, waiter := e.process("app"), e.process("nse")
	acquire(t, holder)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := waiter.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire = %v, want DeadlineExceeded", err)
	}
}
