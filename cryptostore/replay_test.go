package cryptostore

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// The batch forms agree with RecordMegolmIndex: MegolmIndexUses finds what
// it recorded, across chunks and sessions, and AddMegolmIndexUses records
// what it would, never replacing a recorded use.
func TestMegolmIndexUsesBatch(t *testing.T) {
	s, _ := tempStore(t)
	event := func(session string, i int) string { return fmt.Sprintf("$%s-%d", session, i) }
	update(t, s, func(tx *Tx) error {
		for i := 0; i < 150; i += 5 {
			if err := tx.RecordMegolmIndex("A", uint32(i), event("A", i), int64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	var add []MegolmIndexUse
	for i := 1; i < 150; i += 5 {
		add = append(add, MegolmIndexUse{MegolmIndex{"B", uint32(i)}, event("B", i), int64(i)})
	}
	// Already recorded, with another event: ignored.
	add = append(add, MegolmIndexUse{MegolmIndex{"A", 5}, "$other", 1})
	update(t, s, func(tx *Tx) error { return tx.AddMegolmIndexUses(add) })

	var query []MegolmIndex
	for i := range 150 {
		query = append(query, MegolmIndex{"A", uint32(i)}, MegolmIndex{"B", uint32(i)})
	}
	s.View(context.Background(), "check", func(tx *Tx) error {
		uses, err := tx.MegolmIndexUses(query)
		if err != nil {
			t.Fatal(err)
		}
		if len(uses) != 60 {
			t.Fatalf("%d uses found, want 60", len(uses))
		}
		for ix, u := range uses {
			session, i := ix.SessionID, int(ix.Index)
			if u.MegolmIndex != ix || u.EventID != event(session, i) || u.OriginTS != int64(i) ||
				(session == "A") != (i%5 == 0) || (session == "B") != (i%5 == 1) {
				t.Fatalf("%+v: %+v", ix, u)
			}
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		var replay *ReplayError
		err := tx.RecordMegolmIndex("B", 6, "$other", 0)
		if !errors.As(err, &replay) || replay.FirstEvent != event("B", 6) || replay.FirstTS != 6 {
			t.Fatalf("replay of an added use: %v", err)
		}
		return tx.RecordMegolmIndex("B", 6, event("B", 6), 6)
	})
	err := s.View(context.Background(), "read only", func(tx *Tx) error { return tx.AddMegolmIndexUses(add[:1]) })
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("AddMegolmIndexUses in a View: %v", err)
	}
}
