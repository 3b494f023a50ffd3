package cryptostore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/xolm/xolm/megolm"
)

// groupSession returns a new outbound Megolm session and a record of its
// inbound copy for room !r.
func groupSession(t *testing.T) (*megolm.OutboundGroupSession, *InboundGroupSessionRecord) {
	t.Helper()
	out, err := megolm.NewOutboundGroupSession(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	in, err := megolm.NewInboundGroupSession(out.SessionKey())
	if err != nil {
		t.Fatal(err)
	}
	return out, &InboundGroupSessionRecord{RoomID: "!r", SenderKey: "sk", SigningKey: "ed", Session: in,
		ImportedAt: time.UnixMilli(1_700_000_000_000)}
}

// UpdateInboundGroupSession writes back a stored session, every column of
// its record; a session that is not stored (in that room) is ErrNotFound,
// and nothing is written.
func TestUpdateInboundGroupSessionOfAStoredSession(t *testing.T) {
	s, path := tempStore(t)
	out, rec := groupSession(t)
	update(t, s, func(tx *Tx) error {
		_, err := tx.PutInboundGroupSession(rec)
		return err
	})

	before := dump(t, path)
	for _, room := range []string{"!other", "!r"} {
		stray := rec.clone()
		stray.RoomID = room
		if room == "!r" {
			_, stray = groupSession(t) // another session
		}
		err := s.Update(t.Context(), "test", Normal, func(tx *Tx) error { return tx.UpdateInboundGroupSession(stray) })
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("update of a session not stored in %s: %v", room, err)
		}
	}
	if !bytes.Equal(before, dump(t, path)) {
		t.Fatal("a failed update changed the store")
	}

	for range 3 {
		ct, _ := out.Encrypt([]byte("x"))
		if _, _, err := rec.Session.Decrypt(ct); err != nil {
			t.Fatal(err)
		}
	}
	rec.SenderKey, rec.SigningKey, rec.Forwarded, rec.SharedHistory = "sk2", "ed2", true, true
	rec.ImportedAt = rec.ImportedAt.Add(time.Second)
	update(t, s, func(tx *Tx) error { return tx.UpdateInboundGroupSession(rec) })

	fresh := openAt(t, path, "other", func(o *Options) { o.NoCache = true })
	s.Close() // the other process takes the lease
	err := fresh.View(t.Context(), "check", func(tx *Tx) error {
		got, err := tx.InboundGroupSession("!r", rec.Session.ID())
		if err != nil {
			return err
		}
		if got.Session.LatestIndex() != 2 || got.SenderKey != "sk2" || got.SigningKey != "ed2" || !got.Forwarded ||
			!got.SharedHistory || !got.ImportedAt.Equal(rec.ImportedAt) {
			t.Errorf("stored %+v, latest index %d; want %+v, latest index 2", got, got.Session.LatestIndex(), rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
