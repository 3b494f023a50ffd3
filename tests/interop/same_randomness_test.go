package interop

import (
	"crypto/rand"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// sameRandomnessRuns is how many times TestSameRandomness runs its
// conversation, each time with fresh bytes.
const sameRandomnessRuns = 3

// sharedRandom gives libolm and xolm the same fresh random bytes for one call
// each: queued in the peer (in fixed mode) and held in a reader for xolm.
type sharedRandom struct {
	t *testing.T
	l *libolm
}

// next queues n fresh bytes in the peer for its next call and returns a
// reader of the same bytes.
func (s sharedRandom) next(n int) *stepRandom {
	s.t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		s.t.Fatal(err)
	}
	if n > 0 {
		s.l.call("rand.push", map[string]any{"bytes": b}, nil)
	}
	return &stepRandom{b: b}
}

// used checks that both libolm and xolm took exactly the bytes of r.
func (s sharedRandom) used(r *stepRandom, what string) {
	s.t.Helper()
	var left int
	s.l.call("rand.remaining", nil, &left)
	if left != 0 || r.over != 0 || len(r.b) != 0 {
		s.t.Fatalf("%s: libolm left %d bytes; xolm read %d too many and left %d", what, left, r.over, len(r.b))
	}
}

func same(t *testing.T, what, xolm, libolm string) {
	t.Helper()
	if xolm != libolm {
		t.Fatalf("%s:\nxolm   %s\nlibolm %s", what, xolm, libolm)
	}
}

// TestSameRandomness runs the same conversation in xolm and in libolm, each
// call of both given the same fresh random bytes, and compares every output
// byte for byte: the transcripts' check, with new keys on every run.
func TestSameRandomness(t *testing.T) {
	l := startLibolm(t)
	l.call("rand.mode", map[string]any{"mode": "fixed"}, nil)
	shared := sharedRandom{t: t, l: l}
	key := randomPickleKey(t)
	for range sameRandomnessRuns {
		sameOlm(t, shared, key)
		sameMegolm(t, shared, key)
	}
	sameOneTimeKeyOverflow(t, shared, key)
}

// sameOneTimeKeyOverflow generates more one-time keys than an account holds,
// published and not, and checks that xolm drops the same ones as libolm.
func sameOneTimeKeyOverflow(t *testing.T, shared sharedRandom, key []byte) {
	l := shared.l
	a := newTwinAccount(t, shared)
	for i, n := range []int{olm.MaxOneTimeKeys * 3 / 5, olm.MaxOneTimeKeys * 3 / 10, olm.MaxOneTimeKeys * 3 / 10} {
		r := shared.next(32 * n)
		l.call("account.generate_one_time_keys", map[string]any{"account": a.l.h, "count": n}, nil)
		if err := a.x.GenerateOneTimeKeys(r, n); err != nil {
			t.Fatal(err)
		}
		shared.used(r, "one-time keys")
		if i == 0 {
			l.call("account.mark_keys_as_published", map[string]any{"account": a.l.h}, nil)
			a.x.MarkKeysAsPublished()
		}
		sameAccount(t, a.x, a.l)
		same(t, "account pickle", a.x.LibolmPickle(key), l.pickle("account", a.l.h, key))
	}
}

// twinAccount is one account made twice, in xolm and in libolm, from the same
// bytes.
type twinAccount struct {
	x *olm.Account
	l libolmAccount
}

func newTwinAccount(t *testing.T, shared sharedRandom) twinAccount {
	t.Helper()
	r := shared.next(64)
	tw := twinAccount{l: shared.l.newAccount()}
	var err error
	if tw.x, err = olm.NewAccount(r); err != nil {
		t.Fatal(err)
	}
	shared.used(r, "account")
	return tw
}

func sameOlm(t *testing.T, shared sharedRandom, key []byte) {
	l := shared.l
	alice, bob := newTwinAccount(t, shared), newTwinAccount(t, shared)
	r := shared.next(3 * 32)
	l.call("account.generate_one_time_keys", map[string]any{"account": bob.l.h, "count": 3}, nil)
	if err := bob.x.GenerateOneTimeKeys(r, 3); err != nil {
		t.Fatal(err)
	}
	shared.used(r, "one-time keys")
	r = shared.next(32)
	l.call("account.generate_fallback_key", map[string]any{"account": bob.l.h}, nil)
	if err := bob.x.GenerateFallbackKey(r); err != nil {
		t.Fatal(err)
	}
	shared.used(r, "fallback key")
	sameAccount(t, alice.x, alice.l)
	sameAccount(t, bob.x, bob.l)
	otk := bob.x.OneTimeKeys()[1].Key

	r = shared.next(64)
	ls := alice.l.outbound(bob.x.IdentityKeys().Curve25519, otk)
	xs, err := alice.x.NewOutboundSession(r, bob.x.IdentityKeys().Curve25519, otk)
	if err != nil {
		t.Fatal(err)
	}
	shared.used(r, "outbound session")
	same(t, "session id", xs.ID(), ls.id())
	xAlice := &xolmSession{t: t, name: "xolm alice", s: xs}

	// Each message is encrypted by both; libolm's copy is delivered to both
	// receivers. Replies start new chains, which draw 32 bytes.
	pre := exchange(t, shared, xAlice, ls, 0, "hello bob")
	xb, plaintext, err := bob.x.NewInboundSession(nil, parsePreKey(t, pre))
	if err != nil {
		t.Fatal(err)
	}
	lb, got := bob.l.inbound(pre, true)
	same(t, "pre-key plaintext", string(plaintext), got)
	same(t, "inbound session id", xb.ID(), lb.id())
	xBob := &xolmSession{t: t, name: "xolm bob", s: xb}
	for i, text := range []string{"hi alice", "a reply in the same chain"} {
		m := exchange(t, shared, xBob, lb, 32*(1-i), text)
		receive(t, xAlice, m, text)
		receive(t, ls, m, text)
	}
	m := exchange(t, shared, xAlice, ls, 32, "a new chain")
	receive(t, xBob, m, "a new chain")
	receive(t, lb, m, "a new chain")

	same(t, "alice's account pickle", alice.x.LibolmPickle(key), l.pickle("account", alice.l.h, key))
	same(t, "bob's account pickle", bob.x.LibolmPickle(key), l.pickle("account", bob.l.h, key))
	same(t, "alice's session pickle", xs.LibolmPickle(key), l.pickle("session", ls.h, key))
	same(t, "bob's session pickle", xb.LibolmPickle(key), l.pickle("session", lb.h, key))
}

// exchange encrypts text at both ends of a twin session with the same n
// random bytes, checks that the messages are identical, and returns it.
func exchange(t *testing.T, shared sharedRandom, x *xolmSession, l *libolmSession, n int, text string) olmMessage {
	t.Helper()
	r := shared.next(n)
	lm := l.encrypt(text)
	typ, body, err := x.s.Encrypt(r, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	shared.used(r, "encrypt "+text)
	if int(typ) != lm.Type || b64.Encode(body) != lm.Body {
		t.Fatalf("encrypting %q: xolm type %d %s, libolm type %d %s", text, typ, b64.Encode(body), lm.Type, lm.Body)
	}
	return lm
}

func sameMegolm(t *testing.T, shared sharedRandom, key []byte) {
	l := shared.l
	r := shared.next(160)
	lib := libolmGroups{l}.newOutbound().(libolmOutGroup)
	out, err := megolm.NewOutboundGroupSession(r)
	if err != nil {
		t.Fatal(err)
	}
	shared.used(r, "outbound group session")
	same(t, "session key", b64.Encode(out.SessionKey()), lib.sessionKey())
	in, err := megolm.NewInboundGroupSession(out.SessionKey())
	if err != nil {
		t.Fatal(err)
	}
	libIn, err := libolmGroups{l}.newInbound(lib.sessionKey())
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for i := range 3 {
		body := xolmOutGroup{t: t, s: out}.encrypt(groupText(i))
		same(t, "group message", body, lib.encrypt(groupText(i)))
		bodies = append(bodies, body)
	}
	for _, i := range []int{2, 0} {
		decryptsAt(t, xolmInGroup{t: t, s: in}, bodies, i)
		decryptsAt(t, libIn, bodies, i)
	}
	exported, err := in.Export(1)
	if err != nil {
		t.Fatal(err)
	}
	libExported, err := libIn.export(1)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "export at 1", b64.Encode(exported), libExported)
	same(t, "outbound pickle", out.LibolmPickle(key), l.pickle("outbound_group", lib.h, key))
	same(t, "inbound pickle", in.LibolmPickle(key), l.pickle("inbound_group", libIn.(libolmInGroup).h, key))
}
