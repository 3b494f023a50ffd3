package cryptostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/xprocess"
)

// advance decrypts the peer's next message in rec's session and returns the
// plaintext.
func advance(t testing.TB, rec *OlmSessionRecord, peer *olm.Session, text string) {
	t.Helper()
	typ, body, err := peer.Encrypt(rand.Reader, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	got, err := rec.Session.Decrypt(typ, body)
	if err != nil || string(got) != text {
		t.Fatalf("decrypt: %q %v", got, err)
	}
}

// Invariants 1 and 2, in one process with two stores standing for two
// processes (each its own lease holder and cache): store A caches a session,
// store B advances and commits it, and A's next transaction reads B's
// version. With invalidation disabled, A reads its stale copy — so this test
// can fail.
func TestInvariant1StaleCacheIsNeverReturned(t *testing.T) {
	for _, skip := range []bool{false, true} {
		name := map[bool]string{false: "invalidating", true: "InsecureSkipCacheInvalidation"}[skip]
		t.Run(name, func(t *testing.T) {
			_, path := tempStore(t)
			a := openAt(t, path, "app", func(o *Options) { o.InsecureSkipCacheInvalidation = skip })
			b := openAt(t, path, "nse")
			mine, peer, sender := sessionPair(t)
			update(t, a, func(tx *Tx) error {
				return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: time.Now(), LastUsedAt: time.Now()})
			})
			var cached []byte
			a.View(context.Background(), "warm", func(tx *Tx) error {
				recs, _ := tx.OlmSessions(sender)
				cached = recs[0].Session.Pickle(testKey, nil)
				return nil
			})
			var advanced *olm.Session
			update(t, b, func(tx *Tx) error {
				recs, err := tx.OlmSessions(sender)
				if err != nil {
					return err
				}
				advance(t, recs[0], peer, "moves the ratchet on")
				advanced = recs[0].Session
				return tx.PutOlmSession(recs[0])
			})
			var seen *olm.Session
			a.View(context.Background(), "read", func(tx *Tx) error {
				recs, err := tx.OlmSessions(sender)
				if err != nil {
					t.Fatal(err)
				}
				seen = recs[0].Session
				return nil
			})
			fresh := bytes.Equal(state(seen), state(advanced))
			stale := bytes.Equal(state(seen), state(mustUnpickle(t, cached)))
			if skip {
				if !stale || fresh {
					t.Fatal("with invalidation disabled the stale copy should be read; the test cannot fail")
				}
				return
			}
			if !fresh || stale {
				t.Fatal("process A read a stale session after B advanced it")
			}
		})
	}
}

func state(s *olm.Session) []byte { return []byte(s.LibolmPickle([]byte("k"))) }

func mustUnpickle(t testing.TB, b []byte) *olm.Session {
	s, err := olm.UnpickleSession(b, testKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Invariant 5: a step that fails after changing its copies leaves the store
// and the cache byte-identical.
func TestInvariant5FailedStepChangesNothing(t *testing.T) {
	s, path := tempStore(t)
	mine, peer, sender := sessionPair(t)
	update(t, s, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: time.Now(), LastUsedAt: time.Now()})
	})
	var before []byte
	s.View(context.Background(), "warm", func(tx *Tx) error {
		recs, _ := tx.OlmSessions(sender)
		before = state(recs[0].Session)
		return nil
	})
	dumpBefore := dump(t, path)
	boom := errors.New("commit refused")
	err := s.Update(context.Background(), "fails", Normal, func(tx *Tx) error {
		recs, _ := tx.OlmSessions(sender)
		advance(t, recs[0], peer, "x")
		if err := tx.PutOlmSession(recs[0]); err != nil {
			return err
		}
		tx.AddOlmMessage([32]byte{1}, sender)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if !bytes.Equal(dumpBefore, dump(t, path)) {
		t.Fatal("store changed by a failed step")
	}
	s.View(context.Background(), "after", func(tx *Tx) error {
		recs, _ := tx.OlmSessions(sender)
		if !bytes.Equal(before, state(recs[0].Session)) {
			t.Fatal("cache changed by a failed step")
		}
		return nil
	})
}

// Invariant 3: a process that holds the lease and is frozen (here, just
// before a write transaction) while its lease expires and another process
// takes it over and writes, can never write: its write fails with
// ErrLeaseLost and the store holds only the other process's data.
func TestInvariant3FencedWriterCannotWrite(t *testing.T) {
	_, path := tempStore(t)
	// Renewal far apart, so that only the fence can notice the takeover.
	slow := func(o *Options) { o.Lease = xprocess.Options{Duration: time.Minute, RenewEvery: 50 * time.Second} }
	a := openAt(t, path, "app", slow)
	b := openAt(t, path, "nse", slow)
	ctx := context.Background()
	held, err := a.Process().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	testHookBeforeWrite = func() {
		testHookBeforeWrite = nil
		raw, _ := sql.Open("sqlite", path)
		defer raw.Close()
		// The frozen process's lease expired...
		if _, err := raw.Exec(`UPDATE xprocess_lease SET expires_at = 0`); err != nil {
			t.Error(err)
		}
		// ...and the other process took it over and wrote.
		update(t, b, func(tx *Tx) error { return tx.TrackUser("@b:x", true) })
	}
	defer func() { testHookBeforeWrite = nil }()
	err = a.Update(ctx, "stale write", Normal, func(tx *Tx) error { return tx.TrackUser("@a:x", true) })
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale writer: %v", err)
	}
	b.View(ctx, "check", func(tx *Tx) error {
		users, _ := tx.TrackedUsers(false)
		if len(users) != 1 || users[0] != "@b:x" {
			t.Fatalf("tracked users %v", users)
		}
		return nil
	})
}

// Invariant 15: a flipped byte or a row copied onto another key is detected
// and reported with its table and key; nothing is changed.
func TestInvariant15SealedRowsAreAuthenticated(t *testing.T) {
	s, path := tempStore(t)
	s1, _, sender := sessionPair(t)
	s2, _, _ := sessionPair(t)
	now := time.Now()
	update(t, s, func(tx *Tx) error {
		tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: s1, CreatedAt: now, LastUsedAt: now})
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: s2, CreatedAt: now, LastUsedAt: now.Add(time.Second)})
	})
	for _, tc := range []struct {
		name string
		sql  string
	}{
		{"flipped byte", `UPDATE olm_sessions SET blob = substr(blob, 1, 40) || CASE WHEN substr(blob, 41, 1) = x'00' THEN x'01' ELSE x'00' END || substr(blob, 42) WHERE session_id = ?1`},
		{"row swapped", `UPDATE olm_sessions SET blob = (SELECT blob FROM olm_sessions WHERE session_id != ?1) WHERE session_id = ?1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := sql.Open("sqlite", path)
			var orig []byte
			raw.QueryRow(`SELECT blob FROM olm_sessions WHERE session_id = ?`, s1.ID()).Scan(&orig)
			if _, err := raw.Exec(tc.sql, s1.ID()); err != nil {
				t.Fatal(err)
			}
			defer func() {
				raw.Exec(`UPDATE olm_sessions SET blob = ? WHERE session_id = ?`, orig, s1.ID())
				raw.Close()
			}()
			before := dump(t, path)
			s.Invalidate()
			err := s.View(context.Background(), "read", func(tx *Tx) error {
				_, err := tx.OlmSessions(sender)
				return err
			})
			var ce *CorruptRowError
			if !errors.As(err, &ce) || ce.Table != "olm_sessions" || ce.Key != s1.ID() || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v", err)
			}
			if !bytes.Equal(before, dump(t, path)) {
				t.Fatal("store changed while reporting corruption")
			}
		})
	}
}

func TestNoCacheModeReadsSQLite(t *testing.T) {
	s, _ := tempStore(t, func(o *Options) { o.NoCache = true })
	mine, _, sender := sessionPair(t)
	update(t, s, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: time.Now(), LastUsedAt: time.Now()})
	})
	s.View(context.Background(), "read", func(tx *Tx) error {
		tx.OlmSessions(sender)
		return nil
	})
	if n := s.cache.olmSessions.len(); n != 0 {
		t.Fatalf("no-cache mode cached %d entries", n)
	}
}

// Invariant 13: Suspended releases the lease, checkpoints and closes the
// connections, and refuses new transactions with ErrSuspended; resuming
// brings the store back.
func TestInvariant13SuspendClosesAndRefuses(t *testing.T) {
	ctx := context.Background()
	s, path := tempStore(t)
	other := openAt(t, path, "nse")
	update(t, s, func(tx *Tx) error { return tx.TrackUser("@a:x", false) })
	if err := s.Process().SetPhase(ctx, xprocess.Suspended); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "suspended", Normal, func(tx *Tx) error { return nil }); !errors.Is(err, ErrSuspended) {
		t.Fatalf("update while suspended: %v", err)
	}
	if err := s.View(ctx, "suspended", func(tx *Tx) error { return nil }); !errors.Is(err, ErrSuspended) {
		t.Fatalf("view while suspended: %v", err)
	}
	// The lease is free: the other process writes without waiting it out.
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := other.Update(lctx, "takes over", Normal, func(tx *Tx) error { return tx.TrackUser("@b:x", false) }); err != nil {
		t.Fatalf("other process: %v", err)
	}
	if err := s.Process().SetPhase(ctx, xprocess.Active); err != nil {
		t.Fatal(err)
	}
	s.View(ctx, "resumed", func(tx *Tx) error {
		users, err := tx.TrackedUsers(false)
		if err != nil || len(users) != 2 {
			t.Fatalf("after resume: %v %v", users, err)
		}
		return nil
	})
}

// The cache is only an accelerator, but it must accelerate: a process's own
// transactions do not invalidate it, and reads after them are served from it.
func TestCacheSurvivesOwnTransactions(t *testing.T) {
	s, _ := tempStore(t)
	mine, _, sender := sessionPair(t)
	update(t, s, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: time.Now(), LastUsedAt: time.Now()})
	})
	s.View(context.Background(), "warm", func(tx *Tx) error { _, err := tx.OlmSessions(sender); return err })
	inv := s.cache.invalidations
	for i := 0; i < 3; i++ {
		update(t, s, func(tx *Tx) error {
			recs, err := tx.OlmSessions(sender)
			if err != nil {
				return err
			}
			recs[0].LastUsedAt = recs[0].LastUsedAt.Add(time.Second)
			return tx.PutOlmSession(recs[0])
		})
		s.View(context.Background(), "read", func(tx *Tx) error { _, err := tx.OlmSessions(sender); return err })
	}
	if s.cache.invalidations != inv {
		t.Fatalf("own transactions invalidated the cache %d times", s.cache.invalidations-inv)
	}
	if _, ok := s.cache.olmSessions.get(sender, s.cache.generation); !ok {
		t.Fatal("session not cached after own writes")
	}
}

// Invariant 9: archived durable state comes back on restore, but never over
// a newer live row; spent one-time keys are erased, not archived.
func TestInvariant9ArchiveRestoreNeverOverwritesNewer(t *testing.T) {
	s, path := tempStore(t)
	mine, peer, sender := sessionPair(t)
	old := time.Unix(1_700_000_000, 0)
	update(t, s, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: old, LastUsedAt: old})
	})
	update(t, s, func(tx *Tx) error { return tx.ArchiveOlmSession(sender, mine.ID()) })
	// The same session comes back live and moves on (a newer copy).
	newer := mine.Clone()
	advance(t, &OlmSessionRecord{Session: newer}, peer, "newer")
	update(t, s, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: newer, CreatedAt: old, LastUsedAt: old.Add(time.Hour)})
	})
	before := dump(t, path)
	update(t, s, func(tx *Tx) error {
		ok, err := tx.RestoreOlmSession(mine.ID())
		if ok {
			t.Error("restore overwrote a newer live session")
		}
		return err
	})
	if !bytes.Equal(before, dump(t, path)) {
		t.Fatal("a refused restore changed the store")
	}
	s.View(context.Background(), "live", func(tx *Tx) error {
		recs, _ := tx.OlmSessions(sender)
		if len(recs) != 1 || !bytes.Equal(state(recs[0].Session), state(newer)) {
			t.Fatal("live session is not the newer copy")
		}
		return nil
	})
	// A used one-time key leaves no trace in any table.
	acct, _ := olm.NewAccount(rand.Reader)
	acct.GenerateOneTimeKeys(rand.Reader, 1)
	used := acct.OneTimeKeys()[0].Key.String()
	update(t, s, func(tx *Tx) error { return tx.PutAccount(&AccountRecord{UserID: "@a:x", DeviceID: "D", Account: acct}) })
	var sealed []byte
	s.db.Read(context.Background(), "blob", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow(`SELECT blob FROM one_time_keys WHERE public_key = ?`, used).Scan(&sealed)
	})
	if err := s.db.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if file, _ := os.ReadFile(path); !bytes.Contains(file, sealed) {
		t.Fatal("the sealed key is not in the file; the check below would prove nothing")
	}
	update(t, s, func(tx *Tx) error { _, err := tx.RemoveOneTimeKey(used); return err })
	if bytes.Contains(dump(t, path), []byte(used)) {
		t.Fatal("a used one-time key is still in the store")
	}
	// secure_delete overwrites the freed bytes: after a checkpoint the sealed
	// private key is nowhere in the file.
	if err := s.db.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if file, _ := os.ReadFile(path); bytes.Contains(file, sealed) {
		t.Fatal("the used one-time key's sealed bytes are still in the database file")
	}
}
