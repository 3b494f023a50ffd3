package storexp_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/tests/storexp/storeproc"
)

// otkKeys is how many one-time keys the store's account starts with.
const otkKeys = 10

// putAccount stores a fresh account with otkKeys published one-time keys,
// from the test process, and returns it.
func putAccount(t *testing.T, path string, key [32]byte) *olm.Account {
	t.Helper()
	acct, err := olm.NewAccount(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := acct.GenerateOneTimeKeys(rand.Reader, otkKeys); err != nil {
		t.Fatal(err)
	}
	acct.MarkKeysAsPublished()
	ctx := context.Background()
	s, err := cryptostore.Open(ctx, path, cryptostore.Options{Key: &key, Role: "setup"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Update(ctx, "setup", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		return tx.PutAccount(&cryptostore.AccountRecord{UserID: "@bob:example.org", DeviceID: "BOB", Account: acct.Clone()})
	})
	if err != nil {
		t.Fatal(err)
	}
	return acct
}

// claim starts a peer's session on one of bob's one-time keys and returns
// the peer's identity key and its first two messages, both pre-key messages
// of the one session.
func claim(t *testing.T, bob olm.OneTimeKeyState, bobIdentity olm.Curve25519PublicKey) (sender string, m0, m1 []byte) {
	t.Helper()
	alice, err := olm.NewAccount(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out, err := alice.NewOutboundSession(rand.Reader, bobIdentity, bob.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, m0, err = out.Encrypt(rand.Reader, []byte("m0"))
	if err != nil {
		t.Fatal(err)
	}
	typ, m1, err := out.Encrypt(rand.Reader, []byte("m1"))
	if err != nil || typ != olm.MessageTypePreKey {
		t.Fatalf("second message: type %d, %v", typ, err)
	}
	return alice.IdentityKeys().Curve25519.String(), m0, m1
}

// Invariant 6 across processes: a one-time key is used once. Three
// processes, each with the account in its cache, receive pre-key messages
// for one key at the same moment: the same message (one to-device batch seen
// by all), or the same session's first two messages. Each runs, in one
// Update, "look for the message and the session; else create the session
// from a copy of the account, remove the key row, store the session".
// Exactly one creates the session; the others see the message as a
// duplicate or decrypt with the new session. Naive receivers, which skip the
// session lookup, lose with the key missing from their freshly read account
// and write nothing. Never is a second session made from the key.
func TestOneTimeKeyUsedOnceAcrossProcesses(t *testing.T) {
	path, key := storeFile(t)
	bob := putAccount(t, path, key)
	procs := []*storeproc.Proc{
		start(t, storeproc.Config{DB: path, Key: key, Role: "app"}),
		start(t, storeproc.Config{DB: path, Key: key, Role: "nse"}),
		start(t, storeproc.Config{DB: path, Key: key, Role: "nse"}),
	}
	db := rawDB(t, path)
	keys := bob.AllOneTimeKeys()
	variants := []struct {
		name  string
		naive bool
		which []int // message (0 or 1) each process receives
	}{
		{"same batch", false, []int{0, 0, 0}},
		{"same session, other messages", false, []int{0, 1, 0}},
		{"naive receivers", true, []int{0, 1}},
	}
	round := 0
	for rep := range 2 {
		for _, v := range variants {
			t.Run(fmt.Sprintf("%s/%d", v.name, rep), func(t *testing.T) {
				otk := keys[round]
				round++
				for _, p := range procs {
					if r := mustCall(t, p, storeproc.Request{Op: storeproc.OpViewAccount}); r.Keys != otkKeys-round+1 {
						t.Fatalf("helper %d holds %d one-time keys before round %d", p.Pid, r.Keys, round)
					}
				}
				sender, m0, m1 := claim(t, otk, bob.IdentityKeys().Curve25519)
				msgs := [][]byte{m0, m1}
				at := time.Now().Add(30 * time.Millisecond).UnixNano()
				ids := make([]int, len(v.which))
				for i, w := range v.which {
					id, err := procs[i].Send(storeproc.Request{Op: storeproc.OpPreKey, Sender: sender, Body: msgs[w], Naive: v.naive, StartAt: at})
					if err != nil {
						t.Fatal(err)
					}
					ids[i] = id
				}
				pre, _ := olm.ParsePreKeyMessage(m0)
				created := 0
				for i, w := range v.which {
					r, err := procs[i].Wait(ids[i], within)
					if err != nil {
						t.Fatal(err)
					}
					checkPreKeyReply(t, db, r, v.naive, sender, msgs[w], fmt.Sprintf("m%d", w), pre.SessionID())
					if r.Outcome == storeproc.Created {
						created++
					}
				}
				if created != 1 {
					t.Fatalf("%d processes created a session from one one-time key", created)
				}
				if n := count(t, db, `SELECT count(*) FROM olm_sessions WHERE sender_key = ?`, sender); n != 1 {
					t.Fatalf("%d sessions stored with the peer", n)
				}
				if n := count(t, db, `SELECT count(*) FROM olm_sessions WHERE session_id = ?`, pre.SessionID()); n != 1 {
					t.Fatalf("the session is stored %d times", n)
				}
				if n := count(t, db, `SELECT count(*) FROM one_time_keys WHERE public_key = ?`, otk.Key.String()); n != 0 {
					t.Fatal("the used one-time key's row is still there")
				}
				if n := count(t, db, `SELECT count(*) FROM one_time_keys`); n != otkKeys-round {
					t.Fatalf("%d one-time key rows after %d keys were used", n, round)
				}
			})
		}
	}
}

// checkPreKeyReply checks one process's outcome, and that the hash of its
// message is committed exactly when some process's step decrypted it.
func checkPreKeyReply(t *testing.T, db *sql.DB, r storeproc.Reply, naive bool, sender string, body []byte, text, sessionID string) {
	t.Helper()
	hash := cryptostore.OlmMessageHash(sender, int(olm.MessageTypePreKey), body)
	recorded := count(t, db, `SELECT count(*) FROM olm_message_hashes WHERE hash = ?`, hash[:]) == 1
	switch {
	case r.OK && (r.Outcome == storeproc.Created || r.Outcome == storeproc.Matched && !naive):
		if r.Plaintext != text || r.SessionID != sessionID {
			t.Fatalf("%s: decrypted %q into session %s", r.Outcome, r.Plaintext, r.SessionID)
		}
		if !recorded {
			t.Fatalf("%s: the message hash was not committed with the session", r.Outcome)
		}
	case r.OK && r.Outcome == storeproc.Duplicate:
		if !recorded {
			t.Fatal("reported a duplicate of a message nobody committed")
		}
	case !r.OK && naive && r.Kind == storeproc.KindMissingOTK:
		if recorded {
			t.Fatal("the losing step committed its message hash")
		}
	default:
		t.Fatalf("unexpected outcome %q (ok %v, %s: %s)", r.Outcome, r.OK, r.Kind, r.Err)
	}
}
