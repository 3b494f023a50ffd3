package storexp_test

import (
	"crypto/rand"
	"testing"

	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/tests/storexp/storeproc"
)

// peerPair is an Olm conversation set up in the test process: the store's
// side of it (mine, Bob's inbound session) and the peer's (Alice's outbound
// session, kept here).
type peerPair struct {
	mine   *olm.Session
	peer   *olm.Session
	sender string // the peer's Curve25519 identity key
}

func newPeerPair(t *testing.T) peerPair {
	t.Helper()
	alice, err := olm.NewAccount(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := olm.NewAccount(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.GenerateOneTimeKeys(rand.Reader, 1); err != nil {
		t.Fatal(err)
	}
	out, err := alice.NewOutboundSession(rand.Reader, bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := out.Encrypt(rand.Reader, []byte("m0"))
	if err != nil {
		t.Fatal(err)
	}
	pre, err := olm.ParsePreKeyMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	in, _, err := bob.NewInboundSession(nil, pre)
	if err != nil {
		t.Fatal(err)
	}
	return peerPair{mine: in, peer: out, sender: alice.IdentityKeys().Curve25519.String()}
}

// send encrypts text from the peer as a decrypt request for the store's side.
func (pp peerPair) send(t *testing.T, text string) storeproc.Request {
	t.Helper()
	typ, body, err := pp.peer.Encrypt(rand.Reader, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return storeproc.Request{Op: storeproc.OpDecrypt, Sender: pp.sender, Type: int(typ), Body: body}
}

// The stale-session failure of matrix-rust-sdk #3110, with real processes
// (DESIGN.md invariants 1 and 2). Process A ("app") stores an Olm session and
// reads it, so its cache holds it. Process B ("nse") decrypts the peer's next
// message and replies: its reply turns the ratchet over, committed before it
// is sent. The peer answers on a new chain that only the advanced session can
// derive. A, still running, decrypts that answer with the session it reads
// from the store: it must read B's version, byte for byte, and succeed.
//
// With InsecureSkipCacheInvalidation, A reads its cached copy instead, byte
// for byte the one it cached, and cannot decrypt the answer: the failure the
// store exists to prevent, which shows this test can fail. A's failed step
// leaves B's committed session in place.
func TestStaleSessionAcrossProcesses(t *testing.T) {
	for _, skip := range []bool{false, true} {
		name := map[bool]string{false: "invalidating", true: "InsecureSkipCacheInvalidation"}[skip]
		t.Run(name, func(t *testing.T) {
			path, key := storeFile(t)
			app := start(t, storeproc.Config{DB: path, Key: key, Role: "app", SkipInvalidation: skip})
			nse := start(t, storeproc.Config{DB: path, Key: key, Role: "nse"})
			pp := newPeerPair(t)

			put := mustCall(t, app, storeproc.Request{Op: storeproc.OpPutSession, Sender: pp.sender, Session: pp.mine.Pickle(&key, nil)})
			cached := mustCall(t, app, storeproc.Request{Op: storeproc.OpViewSession, Sender: pp.sender}).Before
			if cached != put.After {
				t.Fatal("app read back another session than it stored")
			}

			m1 := mustCall(t, nse, pp.send(t, "m1"))
			if m1.Plaintext != "m1" || m1.Before != cached {
				t.Fatalf("nse decrypted %q from the stored session: %v", m1.Plaintext, m1.Before == cached)
			}
			reply := mustCall(t, nse, storeproc.Request{Op: storeproc.OpEncrypt, Sender: pp.sender, Plaintext: "r1"})
			if pt, err := pp.peer.Decrypt(olm.MessageType(reply.Type), reply.Body); err != nil || string(pt) != "r1" {
				t.Fatalf("peer decrypting the nse's reply: %q %v", pt, err)
			}
			committed := reply.After // the nse's session, ratchet turned over

			answer := pp.send(t, "m2")
			if answer.Type != int(olm.MessageTypeNormal) {
				t.Fatal("the peer's answer is still a pre-key message: no ratchet turnover")
			}
			m2 := call(t, app, answer)
			after := mustCall(t, nse, storeproc.Request{Op: storeproc.OpViewSession, Sender: pp.sender}).Before
			if skip {
				if m2.Before != cached || m2.Before == committed {
					t.Fatal("with invalidation skipped, app should have read its stale copy; the test cannot fail")
				}
				if m2.OK || m2.Kind != storeproc.KindBadMAC {
					t.Fatalf("the stale copy decrypted the answer on the new chain: ok=%v %s", m2.OK, m2.Err)
				}
				if after != committed {
					t.Fatal("app's failed step changed the stored session")
				}
				return
			}
			if m2.Before != committed {
				t.Fatalf("app read a stale session after the nse advanced it (stale copy: %v)", m2.Before == cached)
			}
			if !m2.OK || m2.Plaintext != "m2" {
				t.Fatalf("app could not decrypt the next message: %s (%s)", m2.Err, m2.Kind)
			}
			if after != m2.After {
				t.Fatal("the nse does not read the session app committed")
			}
		})
	}
}
