// Command leaseproc is one process of the cross-process lease tests and
// benchmarks. The tests start several of them on one database and talk to
// each over stdin and stdout, one line per message.
//
// Modes:
//
//	rmw      read-modify-write a counter under the lease, -n times (or until
//	         the counter reaches -total), acquiring and releasing each step
//	scoped   increment the counter with Process.Write (the lease taken for
//	         one transaction) until it reaches -total, printing when each
//	         write had the lease and when it returned
//	hold     acquire, then obey "write V", "release" and "exit" from stdin
//	writer   acquire, then commit numbered rows forever (until killed)
//	phases   obey "enter", "write V", "exit-op", "suspend", "try" from stdin
//	setup    create the database and its tables, and exit
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/xprocess"
)

func main() {
	var (
		path   = flag.String("db", "", "database file")
		role   = flag.String("role", "app", "holder role")
		mode   = flag.String("mode", "", "rmw, scoped, hold, writer, phases or setup")
		n      = flag.Int("n", 0, "rmw: steps to take")
		total  = flag.Int("total", 0, "rmw: stop when the counter reaches this")
		times  = flag.Bool("times", false, "rmw: print each tenure's acquire and release times")
		dur    = flag.Duration("dur", 0, "lease duration (0: the default)")
		renew  = flag.Duration("renew", 0, "renewal interval (0: a third of the duration)")
		inTx   = flag.Duration("in-tx", time.Millisecond, "writer: time spent inside each transaction")
		noWait = flag.Bool("no-lease", false, "rmw: skip the lease (a control that must lose updates)")
		debug  = flag.Bool("log", false, "log lease events to stderr")
	)
	flag.Parse()
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, *path, sqlitedb.Options{})
	check(err)
	logger := zerolog.Nop()
	if *debug {
		zerolog.TimeFieldFormat = zerolog.TimeFormatUnixMicro
		logger = zerolog.New(os.Stderr).With().Timestamp().Logger()
	}
	p, err := xprocess.New(db, xprocess.Options{Role: *role, Duration: *dur, RenewEvery: *renew, Logger: logger})
	check(err)
	check(setup(db))
	fmt.Printf("holder %s\n", p.Holder())
	switch *mode {
	case "rmw":
		rmw(p, db, *n, *total, *times, *noWait)
	case "scoped":
		scoped(p, *total)
	case "hold":
		hold(p, db)
	case "writer":
		writer(p, db, *inTx)
	case "phases":
		phases(p, db)
	case "setup":
	default:
		check(fmt.Errorf("unknown mode %q", *mode))
	}
	check(p.Close())
	check(db.Close())
}

func check(err error) {
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
}

// setup creates the tables the modes use. It looks with a read first: a
// write would contend for SQLite's lock with a busy writer.
func setup(db *sqlitedb.DB) error {
	var n int
	err := db.Read(context.Background(), "look", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'rows'").Scan(&n)
	})
	if err != nil || n > 0 {
		return err
	}
	return db.Write(context.Background(), "setup", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		_, err := tx.Exec(`CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
			INSERT OR IGNORE INTO counter VALUES (1, 0);
			CREATE TABLE IF NOT EXISTS rows(writer TEXT NOT NULL, k INTEGER NOT NULL, gen INTEGER NOT NULL,
				payload BLOB NOT NULL, PRIMARY KEY (writer, k));
			CREATE TABLE IF NOT EXISTS t(v INTEGER NOT NULL)`)
		return err
	})
}

// rmw reads the counter outside any write transaction, then writes it back
// plus one in a fenced transaction: without mutual exclusion, two processes
// would read the same value and one update would be lost.
func rmw(p *xprocess.Process, db *sqlitedb.DB, n, total int, times, noLease bool) {
	ctx := context.Background()
	var lastGen int64
	acquired, changed := 0, 0
	for step := 0; total > 0 || step < n; step++ {
		var l *xprocess.Lease
		var err error
		if !noLease {
			l, err = p.Acquire(ctx)
			check(err)
			if l.Generation() < lastGen {
				check(fmt.Errorf("generation went back from %d to %d", lastGen, l.Generation()))
			}
			lastGen = l.Generation()
			if l.Changed() {
				changed++
			}
		}
		start := time.Now()
		var v int
		check(db.Read(ctx, "read counter", func(tx *sqlitedb.Tx) error {
			return tx.QueryRow("SELECT v FROM counter WHERE id = 1").Scan(&v)
		}))
		if total > 0 && v >= total {
			if l != nil {
				l.Release()
			}
			break
		}
		check(db.Write(ctx, "write counter", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
			if l != nil {
				if err := l.Fence(tx); err != nil {
					return err
				}
			}
			_, err := tx.Exec("UPDATE counter SET v = ? WHERE id = 1", v+1)
			return err
		}))
		acquired++
		end := time.Now()
		if l != nil {
			check(l.Release())
		}
		if times {
			fmt.Printf("tenure %d %d %d\n", start.UnixNano(), end.UnixNano(), lastGen)
		}
	}
	fmt.Printf("done %d %d %d\n", acquired, lastGen, changed)
}

// scoped increments the counter in transaction-scoped writes, as the store
// does for each protocol step, until it reaches total.
func scoped(p *xprocess.Process, total int) {
	ctx := context.Background()
	writes := 0
	for {
		var start time.Time
		var v int
		var gen int64
		check(p.Write(ctx, "increment", sqlitedb.Normal, func(tx *sqlitedb.Tx, g int64, _ bool) error {
			start, gen = time.Now(), g // the lease is ours from here to the commit
			if err := tx.QueryRow("SELECT v FROM counter WHERE id = 1").Scan(&v); err != nil || v >= total {
				return err
			}
			_, err := tx.Exec("UPDATE counter SET v = ? WHERE id = 1", v+1)
			return err
		}, nil))
		if v >= total {
			break
		}
		writes++
		fmt.Printf("tenure %d %d %d\n", start.UnixNano(), time.Now().UnixNano(), gen)
	}
	fmt.Printf("done %d\n", writes)
}

// hold keeps one lease across commands, as an operation in progress would.
func hold(p *xprocess.Process, db *sqlitedb.DB) {
	ctx := context.Background()
	l, err := p.Acquire(ctx)
	check(err)
	fmt.Printf("held %d\n", l.Generation())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "write":
			v, err := strconv.Atoi(arg)
			check(err)
			fmt.Println(outcome(writeValue(db, l, v)))
		case "release":
			check(l.Release())
			fmt.Println("released")
		case "exit":
			return
		}
	}
}

func writeValue(db *sqlitedb.DB, l *xprocess.Lease, v int) error {
	return db.Write(context.Background(), "write value", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		if _, err := tx.Exec("INSERT INTO t VALUES (?)", v); err != nil {
			return err
		}
		return l.Fence(tx) // last, so a refused fence must roll the insert back
	})
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, xprocess.ErrLeaseLost):
		return "lost"
	case errors.Is(err, xprocess.ErrSuspended):
		return "suspended"
	}
	return "error " + err.Error()
}

// writer takes the lease and commits rows 0, 1, 2, ... until it is killed,
// spending inTx inside each transaction so that kills land mid-transaction.
func writer(p *xprocess.Process, db *sqlitedb.DB, inTx time.Duration) {
	ctx := context.Background()
	fmt.Println("waiting")
	l, err := p.Acquire(ctx)
	check(err)
	fmt.Printf("acquired %d %d\n", l.Generation(), time.Now().UnixNano())
	id := p.Holder().String()
	payload := make([]byte, 4096)
	for k := 0; ; k++ {
		check(db.Write(ctx, "write row", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
			if err := l.Fence(tx); err != nil {
				return err
			}
			_, err := tx.Exec("INSERT INTO rows VALUES (?, ?, ?, ?)", id, k, l.Generation(), payload)
			time.Sleep(inTx)
			return err
		}))
		fmt.Printf("committed %d\n", k)
	}
}

// phases drives one operation and the app phase from stdin.
func phases(p *xprocess.Process, db *sqlitedb.DB) {
	ctx := context.Background()
	p.OnSuspend(func(ctx context.Context) error {
		err := db.Checkpoint(ctx)
		fmt.Println("hook checkpoint " + outcome(err))
		return err
	})
	var exit func()
	var l *xprocess.Lease
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "enter":
			var err error
			exit, err = p.Enter(ctx, xprocess.Essential)
			check(err)
			l, err = p.Acquire(ctx)
			check(err)
			fmt.Printf("entered %d\n", l.Generation())
		case "write":
			v, err := strconv.Atoi(arg)
			check(err)
			fmt.Println(outcome(writeValue(db, l, v)))
		case "exit-op":
			check(l.Release())
			exit()
			fmt.Println("exited")
		case "suspend":
			go func() { fmt.Println("suspended " + outcome(p.SetPhase(ctx, xprocess.Suspended))) }()
		case "phase":
			fmt.Printf("phase %s\n", p.Phase())
		case "try":
			exit, err := p.Enter(ctx, xprocess.Essential)
			if err == nil {
				exit()
			}
			fmt.Println("try " + outcome(err))
		case "acquire":
			_, err := p.Acquire(ctx)
			fmt.Println("acquire " + outcome(err))
		case "exit":
			return
		}
	}
}
