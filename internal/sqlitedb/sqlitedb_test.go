package sqlitedb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPragmasAndReadOnlyReaders(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	var mode string
	var secure, limit int
	if err := db.w.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v", mode, err)
	}
	db.w.QueryRow("PRAGMA secure_delete").Scan(&secure)
	db.w.QueryRow("PRAGMA journal_size_limit").Scan(&limit)
	if secure != 1 || limit != JournalSizeLimit {
		t.Fatalf("secure_delete %d, journal_size_limit %d", secure, limit)
	}
	err := db.Write(ctx, "create", Normal, func(tx *Tx) error {
		_, err := tx.Exec("CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Read(ctx, "try write", func(tx *Tx) error {
		_, err := tx.Exec("INSERT INTO t VALUES(1, 'x')")
		return err
	})
	if err == nil {
		t.Fatal("reader connection accepted a write")
	}
}

func TestWriteRollsBackOnError(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	db.Write(ctx, "create", Normal, func(tx *Tx) error {
		_, err := tx.Exec("CREATE TABLE t(k INTEGER PRIMARY KEY)")
		return err
	})
	boom := errors.New("boom")
	err := db.Write(ctx, "insert then fail", Synced, func(tx *Tx) error {
		if _, err := tx.Exec("INSERT INTO t VALUES(1)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var n int
	db.Read(ctx, "count", func(tx *Tx) error { return tx.QueryRow("SELECT count(*) FROM t").Scan(&n) })
	if n != 0 {
		t.Fatalf("rolled-back row visible: %d", n)
	}
	var sync int
	db.w.QueryRow("PRAGMA synchronous").Scan(&sync)
	if sync != 2 { // FULL, left from the Synced transaction
		t.Fatalf("synchronous = %d", sync)
	}
	db.Write(ctx, "normal", Normal, func(tx *Tx) error { return nil })
	db.w.QueryRow("PRAGMA synchronous").Scan(&sync)
	if sync != 1 {
		t.Fatalf("synchronous = %d after a Normal write", sync)
	}
}

func TestWriteHonoursContextAndClose(t *testing.T) {
	db := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	db.writeSem <- struct{}{} // another writer holds the connection
	cancel()
	if err := db.Write(ctx, "blocked", Normal, func(*Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	<-db.writeSem
	db.Close()
	db.Close()
	if err := db.Write(context.Background(), "closed", Normal, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}

// openFDs counts this process's file descriptors on files whose path starts
// with prefix.
func openFDs(t *testing.T, prefix string) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, prefix) {
			n++
		}
	}
	return n
}

func TestSuspendCheckpointsClosesAndResumes(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	if err := db.Write(ctx, "create", Normal, func(tx *Tx) error {
		if _, err := tx.Exec("CREATE TABLE t(k INTEGER PRIMARY KEY)"); err != nil {
			return err
		}
		_, err := tx.Exec("INSERT INTO t VALUES (1), (2)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Read(ctx, "warm readers", func(tx *Tx) error { return nil })
	if openFDs(t, db.Path()) == 0 {
		t.Fatal("no descriptors open before suspending; the check below would prove nothing")
	}
	if err := db.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t, db.Path()); n != 0 {
		t.Fatalf("%d descriptors on the database remain open while suspended", n)
	}
	if fi, err := os.Stat(db.Path() + "-wal"); err == nil && fi.Size() != 0 {
		t.Fatalf("WAL holds %d bytes after suspending", fi.Size())
	}
	if err := db.Write(ctx, "while suspended", Normal, func(*Tx) error { return nil }); !errors.Is(err, ErrSuspended) {
		t.Fatalf("write while suspended: %v", err)
	}
	if err := db.Read(ctx, "while suspended", func(*Tx) error { return nil }); !errors.Is(err, ErrSuspended) {
		t.Fatalf("read while suspended: %v", err)
	}
	if err := db.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Read(ctx, "count", func(tx *Tx) error { return tx.QueryRow("SELECT count(*) FROM t").Scan(&n) }); err != nil || n != 2 {
		t.Fatalf("after resume: %d rows, %v", n, err)
	}
}

// A query runs unprepared once, is then prepared on the idle connection, and
// later transactions run the cached statement; preparing never waits for the
// writer's only connection while a transaction holds it.
func TestStatementsAreCachedAfterFirstUse(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	const create = "CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v INTEGER)"
	const upsert = "INSERT INTO t(k, v) VALUES (?, 1) ON CONFLICT(k) DO UPDATE SET v = v + 1"
	const read = "SELECT v FROM t WHERE k = ?"
	for i := 0; i < 3; i++ {
		err := db.Write(ctx, "upsert", Normal, func(tx *Tx) error {
			if _, err := tx.Exec(create); err != nil {
				return err
			}
			_, err := tx.Exec(upsert, 1)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if db.wStmts.lookup(upsert) == nil {
			t.Fatal("writer statement not cached after use")
		}
		var v int
		if err := db.Read(ctx, "read", func(tx *Tx) error { return tx.QueryRow(read, 1).Scan(&v) }); err != nil || v != i+1 {
			t.Fatalf("read %d: %d %v", i, v, err)
		}
		if db.rStmts.lookup(read) == nil {
			t.Fatal("reader statement not cached after use")
		}
	}
}

// A write transaction whose statement failed never commits, even when the
// function carries on and returns nil.
func TestFailedStatementNeverCommits(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	db.Write(ctx, "create", Normal, func(tx *Tx) error {
		_, err := tx.Exec("CREATE TABLE t(k INTEGER PRIMARY KEY)")
		return err
	})
	err := db.Write(ctx, "ignores an error", Normal, func(tx *Tx) error {
		tx.Exec("INSERT INTO t VALUES (1)")
		tx.Exec("INSERT INTO t VALUES (1)") // constraint violation, ignored by the caller
		return nil
	})
	if err == nil {
		t.Fatal("committed a transaction with a failed statement")
	}
	var n int
	db.Read(ctx, "count", func(tx *Tx) error { return tx.QueryRow("SELECT count(*) FROM t").Scan(&n) })
	if n != 0 {
		t.Fatalf("%d rows from a transaction that should not have committed", n)
	}
}
