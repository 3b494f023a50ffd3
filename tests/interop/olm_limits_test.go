package interop

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/xolm/xolm/olm"
)

// twinReceivers is Bob twice, in xolm and in libolm, from one session state:
// every message goes to both, and replies are encrypted by both with the same
// random bytes, so that their states stay equal and can be compared by
// pickle.
type twinReceivers struct {
	t      *testing.T
	shared sharedRandom
	key    []byte
	alice  *xolmSession
	x      *xolmSession
	l      *libolmSession
}

// newTwinReceivers sets up a session from an xolm Alice to an xolm Bob, and
// copies Bob into libolm through a libolm pickle. The peer is put in fixed
// randomness mode.
func newTwinReceivers(t *testing.T, l *libolm) *twinReceivers {
	t.Helper()
	key := randomPickleKey(t)
	bob := newKeyedAccount(t)
	s, err := newXolmAccount(t).NewOutboundSession(rand.Reader, bob.acc.IdentityKeys().Curve25519, bob.published)
	if err != nil {
		t.Fatal(err)
	}
	alice := &xolmSession{t: t, name: "xolm alice", s: s}
	pre, _ := preKeyMessages(t, alice, 1)
	bs, _, err := bob.acc.NewInboundSession(nil, parsePreKey(t, pre[0]))
	if err != nil {
		t.Fatal(err)
	}
	l.call("rand.mode", map[string]any{"mode": "fixed"}, nil)
	return &twinReceivers{
		t:      t,
		shared: sharedRandom{t: t, l: l},
		key:    key,
		alice:  alice,
		x:      &xolmSession{t: t, name: "xolm bob", s: bs},
		l:      &libolmSession{l: l, h: l.unpickle("session", key, bs.LibolmPickle(key)), name: "libolm bob"},
	}
}

// turnover has both Bobs reply alike and Alice answer on a new chain.
func (tw *twinReceivers) turnover() {
	tw.t.Helper()
	reply := exchange(tw.t, tw.shared, tw.x, tw.l, 32, "reply")
	receive(tw.t, tw.alice, reply, "reply")
	tw.bothReceive(tw.alice.encrypt("answer"), "answer")
}

func (tw *twinReceivers) bothReceive(m olmMessage, text string) {
	tw.t.Helper()
	receive(tw.t, tw.x, m, text)
	receive(tw.t, tw.l, m, text)
	tw.sameState()
}

// bothRefuse checks that both Bobs refuse m, xolm with an error matching
// want, libolm with a MAC failure (the only error it gives).
func (tw *twinReceivers) bothRefuse(m olmMessage, want error, what string) {
	tw.t.Helper()
	if _, err := tw.x.decrypt(m); !errors.Is(err, want) {
		tw.t.Fatalf("xolm on %s: got %v, want %v", what, err, want)
	}
	rejects(tw.t, tw.l, m, what)
	tw.sameState()
}

func (tw *twinReceivers) sameState() {
	tw.t.Helper()
	same(tw.t, "bob's session pickle", tw.x.s.LibolmPickle(tw.key), tw.l.l.pickle("session", tw.l.h, tw.key))
}

// TestOlmLimits checks that xolm keeps libolm's limits exactly: how far ahead
// a message may be, how many skipped message keys and how many receiving
// chains are kept, and which are dropped first.
func TestOlmLimits(t *testing.T) {
	l := startLibolm(t)
	tw := newTwinReceivers(t, l)
	tw.turnover()

	// Alice's new chain: a message olm.MaxMessageGap steps ahead decrypts,
	// one more step is refused.
	msgs := make([]olmMessage, olm.MaxMessageGap+2)
	for i := range msgs {
		msgs[i] = tw.alice.encrypt(fmt.Sprint("message ", i))
	}
	var gap *olm.MessageGapError
	if _, err := tw.x.decrypt(msgs[olm.MaxMessageGap+1]); !errors.As(err, &gap) || gap.Gap != olm.MaxMessageGap+1 {
		t.Fatalf("xolm on a message %d steps ahead: got %v", olm.MaxMessageGap+1, err)
	}
	rejects(t, tw.l, msgs[olm.MaxMessageGap+1], "a message too far ahead")
	tw.sameState()
	tw.bothReceive(msgs[olm.MaxMessageGap], fmt.Sprint("message ", olm.MaxMessageGap))

	// Of the skipped keys, the newest olm.MaxSkippedMessageKeys are kept.
	oldestKept := olm.MaxMessageGap - olm.MaxSkippedMessageKeys
	tw.bothReceive(msgs[oldestKept], fmt.Sprint("message ", oldestKept))
	tw.bothRefuse(msgs[oldestKept-1], olm.ErrBadMAC, "a message whose skipped key was dropped")
	tw.bothRefuse(msgs[0], olm.ErrBadMAC, "the oldest skipped message")

	// A message on a chain that olm.MaxReceiverChains-1 newer chains
	// followed still decrypts; one more chain drops it.
	late := []olmMessage{tw.alice.encrypt("late 0"), tw.alice.encrypt("late 1")}
	for range olm.MaxReceiverChains - 1 {
		tw.turnover()
	}
	tw.bothReceive(late[1], "late 1")
	tw.turnover()
	tw.bothRefuse(late[0], olm.ErrBadMAC, "a message on a dropped chain")
}
