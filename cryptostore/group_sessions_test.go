package cryptostore

import (
	"bytes"
	"crypto/rand"
	"database/sql"
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

// A decrypt moves only the session's ratchet: writing it back, with the
// cache or without, changes the blob and leaves the row's other columns as
// they were; a later reader sees the moved ratchet.
func TestUpdateInboundGroupSessionMovesTheRatchet(t *testing.T) {
	for _, noCache := range []bool{false, true} {
		s, path := tempStore(t, func(o *Options) { o.NoCache = noCache })
		out, rec := groupSession(t)
		rec.Forwarded, rec.SharedHistory = true, true
		update(t, s, func(tx *Tx) error {
			_, err := tx.PutInboundGroupSession(rec)
			return err
		})
		columns := func() string {
			t.Helper()
			db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var row []byte
			err = db.QueryRow(`SELECT json_array(room_id, session_id, sender_key, signing_key, first_known_index,
				forwarded, shared_history, imported_at) FROM inbound_group_sessions`).Scan(&row)
			if err != nil {
				t.Fatal(err)
			}
			return string(row)
		}
		before := columns()
		for i := range 3 {
			ct, _ := out.Encrypt([]byte("x"))
			update(t, s, func(tx *Tx) error {
				got, err := tx.InboundGroupSession("!r", rec.Session.ID())
				if err != nil {
					return err
				}
				if _, _, err := got.Session.Decrypt(ct); err != nil {
					return err
				}
				return tx.UpdateInboundGroupSession(got)
			})
			if after := columns(); after != before {
				t.Fatalf("no cache %t, decryption %d: columns %s, were %s", noCache, i, after, before)
			}
		}
		fresh := openAt(t, path, "other", func(o *Options) { o.NoCache = true })
		s.Close()
		err := fresh.View(t.Context(), "check", func(tx *Tx) error {
			got, err := tx.InboundGroupSession("!r", rec.Session.ID())
			if err == nil && got.Session.LatestIndex() != 2 {
				t.Errorf("no cache %t: latest index %d stored, want 2", noCache, got.Session.LatestIndex())
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
