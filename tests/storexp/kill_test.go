package storexp_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/tests/storexp/storeproc"
)

// kills is how many writer processes TestKilledWriters kills.
const kills = 16

// A writer process SIGKILLed mid-transaction, again and again, never costs
// the store its integrity or a committed row. Each writer commits
// transactions that write a row, advance and store a sealed Olm session and
// write a second row, alternating Normal and Synced durability. Every other
// writer is killed while it pauses inside a transaction after its first
// write; the others at a random moment after some commits (in a commit, an
// fsync, a lease write, between transactions). After each kill a plain
// SQLite connection finds PRAGMA integrity_check ok, every row the writer
// reported committed, both rows of every transaction or neither, and none of
// the transaction it was killed in. The next writer takes over the lease the
// dead one held; at the end the store opens and its session unseals.
func TestKilledWritersLoseNothingCommitted(t *testing.T) {
	path, key := storeFile(t)
	pp := newPeerPair(t)
	setup := start(t, storeproc.Config{DB: path, Key: key, Role: "app"})
	mustCall(t, setup, storeproc.Request{Op: storeproc.OpPutSession, Sender: pp.sender, Session: pp.mine.Pickle(&key, nil)})
	if err := setup.Close(within); err != nil {
		t.Fatal(err)
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	type killed struct {
		run       string
		committed []int
		inside    bool
	}
	var last *killed
	for i := range kills {
		run := fmt.Sprintf("writer%d", i)
		// The store, not a plain connection, is the first to open the file
		// after a kill; the previous writer's rows are checked while it is open.
		p := start(t, storeproc.Config{DB: path, Key: key, Role: []string{"app", "nse"}[i%2]})
		if last != nil {
			checkAfterKill(t, path, last.run, last.committed, last.inside)
		}
		req := storeproc.Request{Op: storeproc.OpWriteLoop, Sender: pp.sender, Label: run}
		inside := i%2 == 0
		if inside {
			req.PauseAt, req.PauseInside = 1+rng.IntN(6), 5000
		}
		id, err := p.Send(req)
		if err != nil {
			t.Fatal(err)
		}
		if inside {
			_, err = p.WaitEvent(id, "inside", within)
		} else {
			err = waitCommitted(p, id, rng.IntN(6))
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		p.Kill()
		committed := committedSeqs(t, p, id)
		if inside && len(committed) != req.PauseAt {
			t.Fatalf("%s: %d commits reported before the pause in iteration %d", run, len(committed), req.PauseAt)
		}
		last = &killed{run, committed, inside}
	}
	s, err := cryptostore.Open(context.Background(), path, cryptostore.Options{Key: &key, Role: "check"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkAfterKill(t, path, last.run, last.committed, last.inside)
	err = s.View(context.Background(), "check", func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(pp.sender)
		if err == nil && len(recs) != 1 {
			err = fmt.Errorf("%d sessions", len(recs))
		}
		return err
	})
	if err != nil {
		t.Fatalf("the store after %d kills: %v", kills, err)
	}
}

// waitCommitted waits until write loop id has reported commit seq.
func waitCommitted(p *storeproc.Proc, id, seq int) error {
	deadline := time.Now().Add(within)
	for {
		for _, r := range p.Replies() {
			if r.ID == id && r.Event == "committed" && r.Seq >= seq {
				return nil
			}
			if r.ID == id && r.Event == "" {
				return fmt.Errorf("write loop ended: %s", r.Err)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no commit %d within %v", seq, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// committedSeqs returns the iterations a killed writer reported committed,
// which must be 0, 1, 2, … in order; a final reply means the loop failed.
func committedSeqs(t *testing.T, p *storeproc.Proc, id int) []int {
	t.Helper()
	var seqs []int
	for _, r := range p.Replies() {
		switch {
		case r.ID == id && r.Event == "committed":
			if r.Seq != len(seqs) {
				t.Fatalf("commit %d reported after %d commits", r.Seq, len(seqs))
			}
			seqs = append(seqs, r.Seq)
		case r.ID == id && r.Event == "":
			t.Fatalf("the write loop failed before the kill: %s", r.Err)
		}
	}
	return seqs
}

// checkAfterKill looks at the file with a plain connection after writer run
// was killed.
func checkAfterKill(t *testing.T, path, run string, committed []int, killedInside bool) {
	t.Helper()
	db := rawDB(t, path)
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("after killing %s: integrity_check %q %v", run, res, err)
	}
	for _, seq := range committed {
		if !hashRecorded(t, db, storeproc.LoopLabel(run, seq, "a")) || !hashRecorded(t, db, storeproc.LoopLabel(run, seq, "b")) {
			t.Fatalf("after killing %s: transaction %d was reported committed and is missing", run, seq)
		}
	}
	// The transaction after the last reported one was in flight: all or nothing.
	next := len(committed)
	a := hashRecorded(t, db, storeproc.LoopLabel(run, next, "a"))
	b := hashRecorded(t, db, storeproc.LoopLabel(run, next, "b"))
	if a != b {
		t.Fatalf("after killing %s: transaction %d is half there (first row %v, last row %v)", run, next, a, b)
	}
	if killedInside && a {
		t.Fatalf("after killing %s: the transaction it was killed in is there", run)
	}
	if hashRecorded(t, db, storeproc.LoopLabel(run, next+1, "a")) {
		t.Fatalf("after killing %s: rows of a transaction that never began", run)
	}
}
