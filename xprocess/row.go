package xprocess

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/xolm/xolm/internal/sqlitedb"
)

// leaseName is the key of the one lease row a store uses.
const leaseName = "xolm"

// wantTTL is how long a waiter's claim on the next turn (the row's want
// column) lasts unless the waiter refreshes it. Waiters retry at least every
// maxPoll, so a live waiter refreshes it several times over; a frozen waiter
// holds up others for at most this long, and a dead one not at all where the
// OS can tell that it died.
const wantTTL = 4 * maxPoll

const createTableSQL = `CREATE TABLE IF NOT EXISTS xprocess_lease (
	name            TEXT PRIMARY KEY,
	holder          TEXT NOT NULL,
	expires_at      INTEGER NOT NULL,
	generation      INTEGER NOT NULL,
	data_stamp      INTEGER NOT NULL DEFAULT 0,
	want            TEXT NOT NULL DEFAULT '',
	want_expires_at INTEGER NOT NULL DEFAULT 0
)`

// Migrate creates the lease table if it does not exist. The store's
// migrations call it; New calls it too.
func Migrate(tx *sqlitedb.Tx) error {
	if _, err := tx.Exec(createTableSQL); err != nil {
		return fmt.Errorf("xprocess: migrate: %w", err)
	}
	return nil
}

const tableExistsSQL = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'xprocess_lease'`

// ensureTable creates the lease table if it is missing. It looks first with
// a read: a write would wait for SQLite's write lock, which a busy holder
// may keep for long stretches.
func ensureTable(db *sqlitedb.DB) error {
	var n int
	err := db.Read(context.Background(), "xprocess: look for table", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow(tableExistsSQL).Scan(&n)
	})
	if err != nil || n > 0 {
		return err
	}
	return db.Write(context.Background(), "xprocess: migrate", sqlitedb.Normal, Migrate)
}

// isBusy reports whether err is SQLite's "database is locked": another
// connection kept the write lock past the busy timeout.
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// acquireSQL takes or extends the lease in one statement. Our own unexpired
// lease is always extended. Otherwise the lease must be free (expired,
// released, expiring implausibly far ahead because a clock went back, or held
// by an instance proven dead) and nobody else may hold a live claim on the
// next turn. The generation goes up exactly when the holder changes; a
// winner that was the wanted waiter (or takes over from a dead one) clears
// the claim.
const acquireSQL = `INSERT INTO xprocess_lease(name, holder, expires_at, generation)
VALUES (:name, :holder, :expires, 1)
ON CONFLICT(name) DO UPDATE SET
	generation = CASE WHEN holder = :holder THEN generation ELSE generation + 1 END,
	holder = :holder,
	expires_at = :expires,
	want = CASE WHEN want IN (:holder, :dead_want) THEN '' ELSE want END,
	want_expires_at = CASE WHEN want IN (:holder, :dead_want) THEN 0 ELSE want_expires_at END
WHERE (holder = :holder AND expires_at > :now AND expires_at <= :horizon)
	OR ((expires_at <= :now OR expires_at > :horizon OR holder = :dead_holder)
		AND (want IN ('', :holder, :dead_want) OR want_expires_at <= :now OR want_expires_at > :want_horizon))
RETURNING generation, data_stamp`

const readSQL = `SELECT holder, expires_at, generation, want, want_expires_at
FROM xprocess_lease WHERE name = ?`

// wantSQL records a waiter's claim on the next turn unless another live
// claim stands.
const wantSQL = `UPDATE xprocess_lease SET want = :holder, want_expires_at = :want_expires
WHERE name = :name
	AND (want IN ('', :holder, :dead_want) OR want_expires_at <= :now OR want_expires_at > :want_horizon)`

const renewSQL = `UPDATE xprocess_lease SET expires_at = ? WHERE name = ? AND holder = ? AND generation = ?`

// releaseSQL frees the lease but keeps the holder's name, so that the same
// holder re-acquiring with nobody in between keeps the generation.
const releaseSQL = `UPDATE xprocess_lease SET expires_at = 0 WHERE name = ? AND holder = ? AND generation = ?`

// fenceReleaseSQL ends a transaction-scoped hold: it fences (the row must
// still name this holder and generation), bumps the data stamp and releases
// the lease, keeping the holder's name as releaseSQL does.
const fenceReleaseSQL = `UPDATE xprocess_lease SET data_stamp = data_stamp + 1, expires_at = 0
WHERE name = ? AND holder = ? AND generation = ?
RETURNING data_stamp`

// scopedRetakeSQL is the common transaction-scoped take in one statement:
// this holder released the lease last and nobody claims the next turn, so
// the lease is taken, the data stamp bumped and the lease released again at
// once, with the generation unchanged (as acquireSQL keeps it for the same
// holder). Nothing can see the row between this statement and the commit:
// the transaction holds SQLite's write lock throughout, and readers see only
// committed rows. When it finds no row the full take (tryRow) decides.
const scopedRetakeSQL = `UPDATE xprocess_lease SET data_stamp = data_stamp + 1
WHERE name = ? AND holder = ? AND expires_at = 0 AND want = ''
RETURNING generation, data_stamp`

// scopedResumeSQL is scopedRetakeSQL for a process that also knows the
// generation and data stamp it left the row at: when the row still stands
// so, nobody wrote since, and the statement needs no RETURNING (which makes
// SQLite buffer the change) for the caller to know the new values.
const scopedResumeSQL = `UPDATE xprocess_lease SET data_stamp = data_stamp + 1
WHERE name = ? AND holder = ? AND expires_at = 0 AND want = '' AND generation = ? AND data_stamp = ?`

// fenceSQL is invariant 3 in one statement: it finds the row only while it
// still names this holder and generation, and bumps the data stamp.
const fenceSQL = `UPDATE xprocess_lease SET data_stamp = data_stamp + 1
WHERE name = ? AND holder = ? AND generation = ?
RETURNING data_stamp`

// leaseRow is the lease row as read.
type leaseRow struct {
	holder      string
	expires     int64 // unix ms
	generation  int64
	want        string
	wantExpires int64 // unix ms
}

// attemptResult is the outcome of one try at the row.
type attemptResult struct {
	ok         bool
	generation int64  // when ok
	dataStamp  int64  // when ok
	expires    int64  // when ok: our new expiry, unix ms
	tookOver   string // when ok: the dead instance we took the lease from, if any

	blocker string // when !ok: the holder, or the waiter whose turn is next
	until   int64  // when !ok: unix ms at which the blocker's claim runs out
	yielded bool   // when !ok: we released last and stand aside for a waiter
	held    bool   // when !ok: a live holder has the lease (rather than a claim on the next turn)
}

// clock carries one attempt's view of time, in unix milliseconds.
type clock struct {
	now, horizon, wantHorizon int64
}

func newClock(now time.Time, dur time.Duration) clock {
	ms := now.UnixMilli()
	return clock{now: ms, horizon: ms + 2*dur.Milliseconds(), wantHorizon: ms + 2*wantTTL.Milliseconds()}
}

// live reports whether a claim expiring at exp still stands: not expired and
// not implausibly far ahead.
func (c clock) live(exp, horizon int64) bool { return exp > c.now && exp <= horizon }

// tryRow makes one attempt at the lease inside a write transaction. dead
// reports whether an instance is known to be gone. If the attempt fails and
// wantTurn is set, the caller's claim on the next turn is recorded.
func tryRow(tx *sqlitedb.Tx, holder string, c clock, dur time.Duration, wantTurn bool, dead func(string) bool) (attemptResult, error) {
	expires := c.now + dur.Milliseconds()
	res, err := upsert(tx, holder, c, expires, "", "")
	if err != nil || res.ok {
		return res, err
	}
	row, err := readRow(tx)
	if err != nil {
		return res, err
	}
	var deadHolder, deadWant string
	holderBlocks := row.holder != holder && c.live(row.expires, c.horizon)
	wantBlocks := row.want != "" && row.want != holder && c.live(row.wantExpires, c.wantHorizon)
	if holderBlocks && dead(row.holder) {
		deadHolder = row.holder
	}
	if wantBlocks && dead(row.want) {
		deadWant = row.want
	}
	if deadHolder != "" || deadWant != "" {
		res, err = upsert(tx, holder, c, expires, deadHolder, deadWant)
		if err != nil || res.ok {
			res.tookOver = deadHolder
			return res, err
		}
	}
	if holderBlocks && deadHolder == "" {
		res.blocker, res.until, res.held = row.holder, row.expires, true
	} else {
		res.blocker, res.until = row.want, row.wantExpires
	}
	if wantTurn {
		_, err = tx.Exec(wantSQL,
			sql.Named("holder", holder), sql.Named("name", leaseName),
			sql.Named("want_expires", c.now+wantTTL.Milliseconds()),
			sql.Named("dead_want", deadWant), sql.Named("now", c.now),
			sql.Named("want_horizon", c.wantHorizon))
	}
	return res, err
}

func upsert(tx *sqlitedb.Tx, holder string, c clock, expires int64, deadHolder, deadWant string) (attemptResult, error) {
	res := attemptResult{expires: expires}
	err := tx.QueryRow(acquireSQL,
		sql.Named("name", leaseName), sql.Named("holder", holder), sql.Named("expires", expires),
		sql.Named("now", c.now), sql.Named("horizon", c.horizon), sql.Named("want_horizon", c.wantHorizon),
		sql.Named("dead_holder", deadHolder), sql.Named("dead_want", deadWant),
	).Scan(&res.generation, &res.dataStamp)
	if errors.Is(err, sql.ErrNoRows) {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.ok = true
	return res, nil
}

func readRow(tx *sqlitedb.Tx) (leaseRow, error) {
	var r leaseRow
	err := tx.QueryRow(readSQL, leaseName).Scan(&r.holder, &r.expires, &r.generation, &r.want, &r.wantExpires)
	return r, err
}

// outlook judges the row from a plain read: whether an attempt could win
// now, and if not, who is in the way and whether an attempt would record
// a claim on the next turn for us (none stands, or ours is going stale).
// Attempts that can neither win nor claim are skipped: they would contend
// for SQLite's write lock with the holder, and SQLite's busy handler sleeps
// a millisecond or more per collision.
func outlook(row leaseRow, holder string, c clock, dead func(string) bool) (res attemptResult, canWin, canClaim bool) {
	if row.holder == holder && c.live(row.expires, c.horizon) {
		return res, true, false // ours to extend
	}
	holderBlocks := c.live(row.expires, c.horizon) && !dead(row.holder)
	wantBlocks := row.want != "" && row.want != holder && c.live(row.wantExpires, c.wantHorizon) && !dead(row.want)
	switch {
	case holderBlocks:
		ownFresh := row.want == holder && row.wantExpires-c.now > wantTTL.Milliseconds()/2 && row.wantExpires <= c.wantHorizon
		return attemptResult{blocker: row.holder, until: row.expires, held: true}, false, !wantBlocks && !ownFresh
	case wantBlocks:
		return attemptResult{blocker: row.want, until: row.wantExpires}, false, false
	}
	return res, true, false
}
