package cryptostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// pauseView makes the next View stop right after its snapshot is pinned,
// until the returned release is called; paused is closed when it stops there.
func pauseView(t *testing.T) (paused <-chan struct{}, release func()) {
	p, r := make(chan struct{}), make(chan struct{})
	testHookViewSnapshot = func() {
		testHookViewSnapshot = nil
		close(p)
		<-r
	}
	t.Cleanup(func() { testHookViewSnapshot = nil })
	return p, func() { close(r) }
}

// Invariant 1 with a View and an Update of one process interleaved: a View
// whose snapshot predates a commit published meanwhile must not put its old
// values into the cache, where the next Update would read them.
func TestInvariant1ViewNeverCachesOlderSnapshot(t *testing.T) {
	_, path := tempStore(t)
	a := openAt(t, path, "app", func(o *Options) { o.CacheSize = 1 })
	b := openAt(t, path, "nse")
	mine, peer, sender := sessionPair(t)
	other, _, sender2 := sessionPair(t)
	now := time.Now()
	update(t, a, func(tx *Tx) error {
		tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender2, Session: other, CreatedAt: now, LastUsedAt: now})
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: now, LastUsedAt: now})
	})
	update(t, b, func(tx *Tx) error { return tx.TrackUser("@u:x", true) }) // a sees a change next
	paused, release := pauseView(t)
	viewDone := make(chan error)
	go func() {
		viewDone <- a.View(context.Background(), "view", func(tx *Tx) error {
			_, err := tx.OlmSessions(sender)
			return err
		})
	}()
	<-paused
	var committed []byte
	update(t, a, func(tx *Tx) error {
		recs, err := tx.OlmSessions(sender)
		if err != nil {
			return err
		}
		advance(t, recs[0], peer, "advances the ratchet")
		recs[0].LastUsedAt = now.Add(time.Second)
		committed = state(recs[0].Session)
		if err := tx.PutOlmSession(recs[0]); err != nil {
			return err
		}
		_, err = tx.OlmSessions(sender2) // evicts the publication from the one-entry cache
		return err
	})
	release()
	if err := <-viewDone; err != nil {
		t.Fatal(err)
	}
	update(t, a, func(tx *Tx) error {
		recs, err := tx.OlmSessions(sender)
		if err != nil {
			return err
		}
		if !bytes.Equal(state(recs[0].Session), committed) {
			t.Fatal("the next Update read the session as it was before the last commit")
		}
		return nil
	})
}

// The same race where the Update adds a session for a sender the cache does
// not hold: the View must not cache a list that lacks it.
func TestInvariant1ViewNeverCachesListMissingACommit(t *testing.T) {
	_, path := tempStore(t)
	a := openAt(t, path, "app")
	b := openAt(t, path, "nse")
	s1, _, sender := sessionPair(t)
	s2, _, _ := sessionPair(t)
	now := time.Now()
	update(t, a, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: s1, CreatedAt: now, LastUsedAt: now})
	})
	update(t, b, func(tx *Tx) error { return tx.TrackUser("@u:x", true) })
	paused, release := pauseView(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.View(context.Background(), "view", func(tx *Tx) error { _, err := tx.OlmSessions(sender); return err })
	}()
	<-paused
	update(t, a, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: s2, CreatedAt: now, LastUsedAt: now.Add(time.Second)})
	})
	release()
	<-done
	update(t, a, func(tx *Tx) error {
		recs, err := tx.OlmSessions(sender)
		if err != nil || len(recs) != 2 {
			t.Fatalf("next Update sees %d sessions, the store has 2 (%v)", len(recs), err)
		}
		return nil
	})
}

// A session archived by its own PutOlmSession (older than the sender's
// newest MaxOlmSessionsPerSender) is not served from the cache either.
func TestPrunedSessionLeavesTheCache(t *testing.T) {
	s, _ := tempStore(t)
	_, _, sender := sessionPair(t)
	base := time.Unix(1_700_000_000, 0)
	for i := 1; i <= MaxOlmSessionsPerSender; i++ {
		in, _, _ := sessionPair(t)
		update(t, s, func(tx *Tx) error {
			return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: in, CreatedAt: base, LastUsedAt: base.Add(time.Duration(i) * time.Second)})
		})
	}
	s.View(context.Background(), "warm", func(tx *Tx) error { _, err := tx.OlmSessions(sender); return err })
	old, _, _ := sessionPair(t)
	update(t, s, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: old, CreatedAt: base, LastUsedAt: base})
	})
	var cached, stored int
	s.View(context.Background(), "cached", func(tx *Tx) error { r, _ := tx.OlmSessions(sender); cached = len(r); return nil })
	s.Invalidate()
	s.View(context.Background(), "stored", func(tx *Tx) error { r, _ := tx.OlmSessions(sender); stored = len(r); return nil })
	if cached != stored || stored != MaxOlmSessionsPerSender {
		t.Fatalf("cache lists %d sessions, SQLite %d", cached, stored)
	}
}

// Invariant 9: copies archived in the same millisecond (a key import with
// several improving copies) all survive in the archive.
func TestInvariant9ArchiveKeepsCopiesFromOneMillisecond(t *testing.T) {
	fixed := time.Unix(1_700_000_000, 0)
	s, _ := tempStore(t, func(o *Options) { o.Now = func() time.Time { return fixed } })
	out, _ := megolm.NewOutboundGroupSession(rand.Reader)
	s0, _ := megolm.NewInboundGroupSession(out.SessionKey())
	out.Encrypt([]byte("x"))
	out.Encrypt([]byte("y"))
	e1, _ := s0.Export(1)
	e2, _ := s0.Export(2)
	i1, _ := megolm.ImportInboundGroupSession(e1)
	i2, _ := megolm.ImportInboundGroupSession(e2)
	update(t, s, func(tx *Tx) error {
		for _, x := range []*megolm.InboundGroupSession{i2, i1, s0} {
			rec := &InboundGroupSessionRecord{RoomID: "!r", SenderKey: "sk", SigningKey: "ed", Session: x, Forwarded: true}
			if _, err := tx.PutInboundGroupSession(rec); err != nil {
				return err
			}
		}
		return nil
	})
	var n int
	s.db.Read(context.Background(), "n", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow(`SELECT count(*) FROM archived_inbound_group_sessions`).Scan(&n)
	})
	if n != 2 {
		t.Fatalf("%d archived copies, want 2", n)
	}
}

// Invariant 11: PutAccount for another device is refused, nothing is
// written, and no one-time key ID is ever handed out twice.
func TestInvariant11PutAccountForAnotherDeviceIsRefused(t *testing.T) {
	s, path := tempStore(t)
	acct, _ := olm.NewAccount(rand.Reader)
	update(t, s, func(tx *Tx) error { return tx.PutAccount(&AccountRecord{UserID: "@a:x", DeviceID: "D", Account: acct}) })
	before := dump(t, path)
	err := s.Update(context.Background(), "other device", Normal, func(tx *Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		rec.DeviceID = "OTHER"
		rec.Account.GenerateOneTimeKeys(rand.Reader, 2)
		return tx.PutAccount(rec)
	})
	if !errors.Is(err, ErrAccountMismatch) {
		t.Fatalf("err = %v", err)
	}
	if !bytes.Equal(before, dump(t, path)) {
		t.Fatal("a refused PutAccount changed the store")
	}
	var ids []olm.KeyID
	update(t, s, func(tx *Tx) error {
		rec, _ := tx.Account()
		rec.Account.GenerateOneTimeKeys(rand.Reader, 2)
		for _, k := range rec.Account.OneTimeKeys() {
			ids = append(ids, k.ID)
		}
		return tx.PutAccount(rec)
	})
	if len(ids) != 2 || ids[0] != 2 || ids[1] != 1 {
		t.Fatalf("key IDs after a refused step: %v", ids)
	}
}
