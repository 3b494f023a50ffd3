//go:build libolm && cgo

package libolm

import (
	"bytes"
	"testing"

	"github.com/xolm/xolm/olm"
)

// Random stream tags, one per use, so that no two keys coincide.
const (
	tagAlice byte = iota + 1
	tagBob
	tagFallback
	tagOutbound
	tagReply
	tagGroup
)

// outboundRandomSize is what libolm takes to start a session: the base key's
// secret and the first ratchet key's.
const outboundRandomSize = 64

// olmFixture holds two libolm accounts, Bob's with a fallback key (which,
// unlike a one-time key, stays after use, so that session setup repeats),
// the same accounts imported into xolm, and a pre-key message from Alice to
// Bob made by libolm.
type olmFixture struct {
	alice, bob   *account
	xAlice, xBob *olm.Account
	bobIdentity  string
	bobFallback  string
	preKey       string // base64
}

func newOlmFixture(t testing.TB) *olmFixture {
	t.Helper()
	f := &olmFixture{}
	f.alice = newTestAccount(t, tagAlice)
	f.bob = newTestAccount(t, tagBob)
	check(t, f.bob.generateFallbackKey(randomBytes(tagFallback, 32)))
	var err error
	if f.bobIdentity, err = f.bob.curve25519(); err != nil {
		t.Fatal(err)
	}
	if f.bobFallback, err = f.bob.fallbackKey(); err != nil {
		t.Fatal(err)
	}
	f.xAlice, f.xBob = importAccount(t, f.alice), importAccount(t, f.bob)

	s := newSession()
	defer s.free()
	check(t, s.createOutbound(f.alice, f.bobIdentity, f.bobFallback, randomBytes(tagOutbound, outboundRandomSize)))
	typ, body, err := s.encrypt(plaintext, nil)
	if err != nil || typ != int(olm.MessageTypePreKey) {
		t.Fatalf("libolm's first message: type %d, %v", typ, err)
	}
	f.preKey = string(body)
	return f
}

func newTestAccount(t testing.TB, tag byte) *account {
	t.Helper()
	a, err := newAccount(randomBytes(tag, 64))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.free)
	return a
}

func importAccount(t testing.TB, a *account) *olm.Account {
	t.Helper()
	p, err := a.pickle(pickleKey)
	check(t, err)
	x, err := olm.ImportLibolmAccount(p, pickleKey)
	check(t, err)
	return x
}

// olmPair is an established pair in both libraries, in the same state: Bob
// answered Alice's pre-key message and Alice decrypted the answer, so Bob
// has a sending chain that Alice knows.
type olmPair struct {
	alice, bob   *session
	xAlice, xBob *olm.Session
}

func newOlmPair(t testing.TB) *olmPair {
	t.Helper()
	f := newOlmFixture(t)
	p := &olmPair{alice: newSession(), bob: newSession()}
	t.Cleanup(p.alice.free)
	t.Cleanup(p.bob.free)
	check(t, p.alice.createOutbound(f.alice, f.bobIdentity, f.bobFallback, randomBytes(tagOutbound, outboundRandomSize)))
	check(t, p.bob.createInbound(f.bob, f.preKey))
	_, err := p.bob.decrypt(int(olm.MessageTypePreKey), f.preKey)
	check(t, err)
	typ, body, err := p.bob.encrypt(plaintext, randomBytes(tagReply, 32))
	check(t, err)
	_, err = p.alice.decrypt(typ, string(body))
	check(t, err)
	p.xAlice, p.xBob = importSession(t, p.alice), importSession(t, p.bob)
	return p
}

func importSession(t testing.TB, s *session) *olm.Session {
	t.Helper()
	p, err := s.pickle(pickleKey)
	check(t, err)
	x, err := olm.ImportLibolmSession(p, pickleKey)
	check(t, err)
	return x
}

// TestOlmSameWork checks that the two sides of each Olm benchmark do the
// same work: from the same state and randomness xolm's messages are
// byte-identical to libolm's, and each side decrypts the other's.
func TestOlmSameWork(t *testing.T) {
	f := newOlmFixture(t)
	bobID, err := olm.ParseCurve25519PublicKey(f.bobIdentity)
	check(t, err)
	bobFallback, err := olm.ParseCurve25519PublicKey(f.bobFallback)
	check(t, err)
	out, err := f.xAlice.NewOutboundSession(&stream{tag: tagOutbound}, bobID, bobFallback)
	check(t, err)
	typ, body, err := out.Encrypt(nil, plaintext)
	check(t, err)
	if typ != olm.MessageTypePreKey || b64.EncodeToString(body) != f.preKey {
		t.Fatal("xolm's outbound session and first message differ from libolm's")
	}

	raw, err := b64.DecodeString(f.preKey)
	check(t, err)
	pre, err := olm.ParsePreKeyMessage(raw)
	check(t, err)
	in, got, err := f.xBob.NewInboundSession(nil, pre)
	check(t, err)
	if !bytes.Equal(got, plaintext) || in.ID() != out.ID() {
		t.Fatal("xolm's inbound session does not match the outbound one")
	}

	p := newOlmPair(t)
	for i := range 3 {
		typ, want, err := p.bob.encrypt(plaintext, nil)
		check(t, err)
		xtyp, got, err := p.xBob.Encrypt(nil, plaintext)
		check(t, err)
		if typ != int(xtyp) || b64.EncodeToString(got) != string(want) {
			t.Fatalf("message %d: xolm's ciphertext differs from libolm's", i)
		}
		fromXolm, err := p.alice.decrypt(typ, b64.EncodeToString(got))
		check(t, err)
		fromLibolm, err := p.xAlice.Decrypt(xtyp, got)
		check(t, err)
		if !bytes.Equal(fromXolm, plaintext) || !bytes.Equal(fromLibolm, plaintext) {
			t.Fatalf("message %d: wrong plaintext", i)
		}
	}
}

func BenchmarkOlmOutboundSessionFirstEncrypt(b *testing.B) {
	f := newOlmFixture(b)
	compare(b, func(tb testing.TB) *side {
		s := newSession()
		tb.Cleanup(s.free)
		random := make([]byte, outboundRandomSize)
		return &side{op: func() {
			refill(random, tagOutbound)
			check(tb, s.createOutbound(f.alice, f.bobIdentity, f.bobFallback, random))
			_, _, err := s.encrypt(plaintext, nil)
			check(tb, err)
		}}
	}, func(tb testing.TB) *side {
		r := &stream{tag: tagOutbound}
		return &side{op: func() {
			r.n = 0
			id, err := olm.ParseCurve25519PublicKey(f.bobIdentity)
			check(tb, err)
			otk, err := olm.ParseCurve25519PublicKey(f.bobFallback)
			check(tb, err)
			s, err := f.xAlice.NewOutboundSession(r, id, otk)
			check(tb, err)
			_, body, err := s.Encrypt(r, plaintext)
			check(tb, err)
			b64.EncodeToString(body)
		}}
	})
}

func BenchmarkOlmInboundSessionFirstDecrypt(b *testing.B) {
	f := newOlmFixture(b)
	compare(b, func(tb testing.TB) *side {
		s := newSession()
		tb.Cleanup(s.free)
		return &side{op: func() {
			check(tb, s.createInbound(f.bob, f.preKey))
			_, err := s.decrypt(int(olm.MessageTypePreKey), f.preKey)
			check(tb, err)
		}}
	}, func(tb testing.TB) *side {
		return &side{op: func() {
			raw, err := b64.DecodeString(f.preKey)
			check(tb, err)
			pre, err := olm.ParsePreKeyMessage(raw)
			check(tb, err)
			_, _, err = f.xBob.NewInboundSession(nil, pre)
			check(tb, err)
		}}
	})
}

// BenchmarkOlmEncrypt encrypts on an established sending chain, which takes
// no randomness. Both sides go on encrypting on the chain they share with
// Alice, one chain step a message.
func BenchmarkOlmEncrypt(b *testing.B) {
	p := newOlmPair(b)
	compare(b, func(tb testing.TB) *side {
		return &side{op: func() {
			_, _, err := p.bob.encrypt(plaintext, nil)
			check(tb, err)
		}}
	}, func(tb testing.TB) *side {
		return &side{op: func() {
			_, body, err := p.xBob.Encrypt(nil, plaintext)
			check(tb, err)
			b64.EncodeToString(body)
		}}
	})
}

// batch is how many messages, in order, the decrypt benchmarks take before
// the receiving session is reset, untimed: a message decrypts only once.
const batch = 512

// BenchmarkOlmDecrypt decrypts the same batch of messages from Bob, in order,
// each a chain step from the one before.
func BenchmarkOlmDecrypt(b *testing.B) {
	p := newOlmPair(b)
	alice, err := p.alice.pickle(pickleKey)
	check(b, err)
	msgs := make([]string, batch)
	for i := range msgs {
		_, body, err := p.bob.encrypt(plaintext, nil)
		check(b, err)
		msgs[i] = string(body)
	}
	compare(b, func(tb testing.TB) *side {
		s := newSession()
		tb.Cleanup(s.free)
		sd := &side{every: batch}
		sd.reset = func() { check(tb, s.unpickle(pickleKey, alice)) }
		sd.op = func() {
			_, err := s.decrypt(int(olm.MessageTypeNormal), msgs[sd.done])
			check(tb, err)
		}
		return sd
	}, func(tb testing.TB) *side {
		var s *olm.Session
		sd := &side{every: batch}
		sd.reset = func() { s = p.xAlice.Clone() }
		sd.op = func() {
			raw, err := b64.DecodeString(msgs[sd.done])
			check(tb, err)
			_, err = s.Decrypt(olm.MessageTypeNormal, raw)
			check(tb, err)
		}
		return sd
	})
}

// check fails t if err is not nil.
func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
