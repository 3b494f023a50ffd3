package cryptostore

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// PruneOlmMessages forgets only hashes older than asked, at most limit at a
// time; a maintenance task's last run is kept per task.
func TestPruneOlmMessagesAndLastRun(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	s, path := tempStore(t, func(o *Options) { o.Now = clock })
	hash := func(i int) (h [32]byte) {
		binary.BigEndian.PutUint32(h[:], uint32(i))
		return h
	}
	add := func(from, to int) {
		var msgs []OlmMessage
		for i := from; i < to; i++ {
			msgs = append(msgs, OlmMessage{Hash: hash(i), SenderKey: "sender"})
		}
		update(t, s, func(tx *Tx) error { _, err := tx.AddOlmMessages(msgs); return err })
	}
	prune := func(olderThan time.Duration, limit int) (n int64) {
		update(t, s, func(tx *Tx) (err error) { n, err = tx.PruneOlmMessages(olderThan, limit); return err })
		return n
	}
	add(0, 50)
	advance(10 * 24 * time.Hour)
	add(50, 80)
	advance(time.Hour)
	if n := prune(11*24*time.Hour, 100); n != 0 {
		t.Fatalf("pruned %d hashes younger than the limit", n)
	}
	if n := prune(5*24*time.Hour, 20); n != 20 {
		t.Fatalf("pruned %d, want the limit of 20", n)
	}
	if n := prune(5*24*time.Hour, 100); n != 30 {
		t.Fatalf("pruned %d, want the other 30 old ones", n)
	}
	s.View(context.Background(), "check", func(tx *Tx) error {
		for i := range 80 {
			seen, err := tx.SeenOlmMessage(hash(i))
			if err != nil {
				t.Fatal(err)
			}
			if seen != (i >= 50) {
				t.Errorf("hash %d: seen %t after pruning", i, seen)
			}
		}
		return nil
	})

	s.View(context.Background(), "never run", func(tx *Tx) error {
		if at, err := tx.LastRun("task"); err != nil || !at.IsZero() {
			t.Errorf("a task never run: %v %v", at, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.SetLastRun("task") })
	ran := clock()
	advance(time.Minute)
	update(t, s, func(tx *Tx) error { return tx.SetLastRun("other") })
	s.View(context.Background(), "ran", func(tx *Tx) error {
		if at, err := tx.LastRun("task"); err != nil || !at.Equal(ran) {
			t.Errorf("last run %v (%v), want %v", at, err, ran)
		}
		if err := tx.SetLastRun("task"); !errors.Is(err, ErrReadOnly) {
			t.Errorf("SetLastRun in a View: %v", err)
		}
		return nil
	})
	before := dump(t, path)
	err := s.Update(context.Background(), "refused", Normal, func(tx *Tx) error {
		if _, err := tx.PruneOlmMessages(0, 100); err != nil {
			return err
		}
		return errors.New("the step fails")
	})
	if err == nil || string(dump(t, path)) != string(before) {
		t.Fatalf("a failed step's pruning reached the store: %v", err)
	}
}
