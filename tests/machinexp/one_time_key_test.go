package machinexp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

const (
	otkRounds        = 6
	otkPeersPerRound = 4
	// otkIdlePerRound is how many more of Alice's one-time keys are claimed
	// each round by peers that send nothing yet: her account must keep them
	// (the rounds leave it below olm.MaxOneTimeKeys keys, so none is
	// dropped for room).
	otkIdlePerRound = 6
)

// Invariant 6 with the machine across processes: a one-time key is used
// once, and a key ID goes out in one upload. Each round, new peers claim one
// of Alice's one-time keys each and send her two pre-key messages on the
// session; the first goes to one of her processes and the second to the
// other, handed to both at the same instant, so that both race to make the
// session from the one key. Then both see the server's lowered key count and
// ask for their outgoing requests at the same instant, and send and mark
// what they got, again at once; the test as homeserver fails any key ID in
// two upload requests. Afterwards the store, opened in the test process,
// holds one session per peer (the peer's own session, by ID), none of the
// keys peers used, and every other uploaded key.
func TestOneTimeKeysAcrossProcesses(t *testing.T) {
	hs := newHomeserver(t)
	a := startAlice(t, hs, false)
	procs := []*deviceline.Proc{a.app, a.nse}

	var peers []*peer
	used := map[string]bool{} // one-time keys peers made sessions from
	uploads := map[string]bool{}
	for round := range otkRounds {
		var batches [2][]json.RawMessage
		for i := range otkPeersPerRound {
			n := len(peers)
			p := newPeer(t, hs, fmt.Sprintf("@peer%d:example.org", n), fmt.Sprintf("PEER%d", n))
			p.connect(t)
			used[claimedKey(t, hs.Claimed()[len(hs.Claimed())-1])] = true
			for j := range 2 {
				ev := p.sendRoomKey(t, fmt.Sprintf("!peer%d.%d:example.org", n, j))
				if typ := olmType(t, ev, a.app.Curve25519); typ != int(olm.MessageTypePreKey) {
					t.Fatalf("peer %d's message %d has type %d", n, j, typ)
				}
				batches[(i+j)%2] = append(batches[(i+j)%2], ev)
			}
			peers = append(peers, p)
		}
		for range otkIdlePerRound {
			if _, _, ok := hs.Claim(alice, aliceDevice); !ok {
				t.Fatal("Alice's keys ran out")
			}
		}

		counts := hs.OneTimeKeyCounts(alice, aliceDevice)
		synced := race(t,
			call{a.app, deviceline.Request{Op: deviceline.OpSync, Events: batches[0], OneTimeKeyCounts: counts}},
			call{a.nse, deviceline.Request{Op: deviceline.OpSync, Events: batches[1], OneTimeKeyCounts: counts}})
		for j, r := range synced {
			for i, res := range r.Results {
				if !decrypted(res) {
					t.Fatalf("round %d: the %s process, event %d: %s (%s)", round, procs[j].Role, i, res.Reason, res.Err)
				}
			}
		}

		outgoing := race(t, call{a.app, deviceline.Request{Op: deviceline.OpOutgoing}}, call{a.nse, deviceline.Request{Op: deviceline.OpOutgoing}})
		var marks []call
		for j, r := range outgoing {
			for _, q := range r.Requests {
				if q.Type != string(machine.RequestKeysUpload) {
					t.Fatalf("round %d: the %s process sends a %s request", round, procs[j].Role, q.Type)
				}
				uploads[q.ID] = true
				resp := hs.answer(q)
				marks = append(marks, call{procs[j], deviceline.Request{Op: deviceline.OpMark, RequestID: q.ID, RequestType: q.Type, Response: resp}})
			}
		}
		race(t, marks...)
		for _, p := range procs {
			if left := hs.flushProc(p); len(left) > 0 {
				t.Fatalf("round %d: the %s process had more requests: %s", round, p.Role, describe(left))
			}
		}
	}
	// The first upload and at least two that replenished the keys.
	if len(uploads) < 3 {
		t.Fatalf("%d upload requests", len(uploads))
	}
	for _, p := range procs {
		if err := p.Close(within); err != nil {
			t.Fatal(err)
		}
	}
	checkOneSessionPerKey(t, a, hs, peers, used)
}

// claimedKey returns the public key of a claimed signed_curve25519 key.
func claimedKey(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var k struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(raw, &k); err != nil || k.Key == "" {
		t.Fatalf("claimed key %s: %v", raw, err)
	}
	return k.Key
}

// checkOneSessionPerKey opens Alice's store in the test process and checks
// that it holds exactly one session with each peer, the one the peer made,
// and exactly the uploaded one-time keys that no peer used.
func checkOneSessionPerKey(t *testing.T, a *aliceProcs, hs *homeserver, peers []*peer, used map[string]bool) {
	t.Helper()
	ctx := context.Background()
	s, err := cryptostore.Open(ctx, a.path, cryptostore.Options{Key: &a.key, Role: "check"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]bool{}
	for id, k := range hs.Uploads() {
		if strings.HasPrefix(id, alice+" "+aliceDevice+" ") && !k.Fallback && !used[claimedKey(t, k.Key)] {
			want[claimedKey(t, k.Key)] = true
		}
	}
	err = s.View(ctx, "check", func(tx *cryptostore.Tx) error {
		for _, p := range peers {
			recs, err := tx.OlmSessions(p.IdentityKeys().Curve25519.String())
			if err != nil {
				return err
			}
			if len(recs) != 1 || recs[0].Session.ID() != peerSessionID(t, p, a.app.Curve25519) {
				t.Errorf("%s: %d sessions, not the peer's own", p.UserID(), len(recs))
			}
		}
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		held := rec.Account.AllOneTimeKeys()
		for _, k := range held {
			key := k.Key.String()
			switch {
			case used[key]:
				t.Errorf("one-time key %s is still held after a session was made from it", key)
			case !want[key]:
				t.Errorf("one-time key %s is held but was never uploaded", key)
			case !k.Published:
				t.Errorf("one-time key %s is uploaded but not marked published", key)
			}
			delete(want, key)
		}
		if len(want) > 0 {
			t.Errorf("%d uploaded keys no peer used are gone from the account", len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// peerSessionID returns the ID of the peer's one session with Alice's
// device.
func peerSessionID(t *testing.T, p *peer, aliceCurve string) string {
	t.Helper()
	var id string
	err := p.Store().View(context.Background(), "check", func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(aliceCurve)
		if err != nil || len(recs) != 1 {
			return fmt.Errorf("%d sessions with Alice: %v", len(recs), err)
		}
		id = recs[0].Session.ID()
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", p.UserID(), err)
	}
	return id
}
