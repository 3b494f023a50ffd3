package cryptostore

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// A transaction reads its own writes even where the cache holds the value
// from before it: the cache sees the writes only after the commit, so reads
// of what the transaction changed must go to SQLite. Without this, a batch
// that decrypts two messages from one sender in one transaction would
// decrypt the second with the session as it was before the first, and a
// one-time key removed in the transaction would come back with the account.
func TestTransactionReadsItsOwnWrites(t *testing.T) {
	s, _ := tempStore(t)
	mine, peer, sender := sessionPair(t)
	acct, _ := olm.NewAccount(rand.Reader)
	acct.GenerateOneTimeKeys(rand.Reader, 2)
	otk := acct.OneTimeKeys()[0].Key.String()
	out, _ := megolm.NewOutboundGroupSession(rand.Reader)
	in, _ := megolm.NewInboundGroupSession(out.SessionKey())
	now := time.Now()
	update(t, s, func(tx *Tx) error {
		if err := tx.PutAccount(&AccountRecord{UserID: "@a:x", DeviceID: "A", Account: acct}); err != nil {
			return err
		}
		if _, err := tx.PutInboundGroupSession(&InboundGroupSessionRecord{RoomID: "!r", Session: in}); err != nil {
			return err
		}
		if err := tx.PutOutboundGroupSession(&OutboundGroupSessionRecord{RoomID: "!r", Session: out, CreatedAt: now}); err != nil {
			return err
		}
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: now, LastUsedAt: now})
	})
	// Warm the cache with every value.
	view := func(tx *Tx) error {
		tx.Account()
		tx.OlmSessions(sender)
		tx.InboundGroupSession("!r", in.ID())
		tx.OutboundGroupSession("!r")
		return nil
	}
	s.View(t.Context(), "warm", view)

	later := now.Add(time.Minute).Truncate(time.Millisecond) // stored in milliseconds
	update(t, s, func(tx *Tx) error {
		recs, err := tx.OlmSessions(sender)
		if err != nil {
			return err
		}
		advance(t, recs[0], peer, "one")
		recs[0].LastUsedAt = later
		if err := tx.PutOlmSession(recs[0]); err != nil {
			return err
		}
		again, err := tx.OlmSessions(sender)
		if err != nil {
			return err
		}
		if !again[0].LastUsedAt.Equal(later) {
			t.Error("olm sessions read after a write returned the state from before it")
		}

		if removed, err := tx.RemoveOneTimeKey(otk); err != nil || !removed {
			t.Fatalf("remove one-time key: %v %v", removed, err)
		}
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		for _, k := range rec.Account.OneTimeKeys() {
			if k.Key.String() == otk {
				t.Error("account read after removing a one-time key still holds it")
			}
		}

		ogs, err := tx.OutboundGroupSession("!r")
		if err != nil {
			return err
		}
		ogs.Session.Encrypt([]byte("x"))
		ogs.MessageCount++
		if err := tx.PutOutboundGroupSession(ogs); err != nil {
			return err
		}
		if o, err := tx.OutboundGroupSession("!r"); err != nil || o.MessageCount != 1 || o.Session.MessageIndex() != 1 {
			t.Errorf("outbound session read after a write: %v", err)
		}

		igs, err := tx.InboundGroupSession("!r", in.ID())
		if err != nil {
			return err
		}
		igs.Forwarded = true
		if err := tx.UpdateInboundGroupSession(igs); err != nil {
			return err
		}
		if g, err := tx.InboundGroupSession("!r", in.ID()); err != nil || !g.Forwarded {
			t.Errorf("inbound group session read after a write: %v", err)
		}
		return nil
	})
	// After the commit, the cache serves the committed values.
	s.View(t.Context(), "after", func(tx *Tx) error {
		recs, _ := tx.OlmSessions(sender)
		if !recs[0].LastUsedAt.Equal(later) {
			t.Error("cache after commit holds the old session")
		}
		rec, _ := tx.Account()
		if len(rec.Account.OneTimeKeys()) != 1 {
			t.Errorf("account after commit holds %d one-time keys", len(rec.Account.OneTimeKeys()))
		}
		return nil
	})
}
