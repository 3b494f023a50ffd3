package olm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/pickle"
)

// Fuzz targets for the entry points that take bytes from outside: pre-key
// messages that create sessions, the two message parsers, and xolm's own
// pickles (FuzzSessionDecrypt and FuzzImportLibolmPickles cover the others).
// Inputs worth keeping live in testdata/fuzz/FuzzX and run with go test.

// nearMisses returns b and variants of it that should mostly be refused: a
// bit flipped at the start, in the middle, just before a message's 8-byte
// MAC and in it; the input cut short; a byte added.
func nearMisses(b []byte) [][]byte {
	out := [][]byte{b}
	if len(b) == 0 {
		return out
	}
	for _, at := range []int{0, 1, len(b) / 2, len(b) - 10, len(b) - 1} {
		if at >= 0 && at < len(b) {
			out = append(out, flip(b, at))
		}
	}
	return append(out, b[:len(b)-1], b[:len(b)/2], append(bytes.Clone(b), 0))
}

// preKeySeed is a pre-key message sent to the fuzzed account, with what it
// must decrypt to and the session that sent it.
type preKeySeed struct {
	body      []byte
	sender    Curve25519PublicKey
	plaintext string
	from      *Session
}

// inner returns the normal message inside the seed.
func (s preKeySeed) inner(t testing.TB) []byte {
	m, err := ParsePreKeyMessage(s.body)
	if err != nil {
		t.Fatal(err)
	}
	return m.Message().Bytes()
}

// preKeySeeds builds Bob's account (four one-time keys, a current and a
// previous fallback key) and pre-key messages to each kind of key: from
// Alice to two one-time keys and both fallback keys, a second message of one
// of her sessions, and one from Carol. All randomness is fixed, so every
// process builds the same messages.
func preKeySeeds(f *testing.F) (bob *Account, alice Curve25519PublicKey, seeds []preKeySeed) {
	bob = newAccount(f, 20, 4)
	bob.MarkKeysAsPublished()
	for i := range 2 {
		if err := bob.GenerateFallbackKey(testRand(21 + byte(i))); err != nil {
			f.Fatal(err)
		}
	}
	a, c := newAccount(f, 23, 0), newAccount(f, 24, 0)
	fallback, prev := bob.fallback.public(), bob.prevFallback.public()
	for i, to := range []struct {
		from *Account
		key  OneTimeKey
		n    int // messages sent on the session
	}{
		{a, bob.oneTimeKeys[0].public(), 2},
		{a, bob.oneTimeKeys[2].public(), 1},
		{a, fallback, 1},
		{a, prev, 1},
		{c, bob.oneTimeKeys[1].public(), 1},
	} {
		s, err := to.from.NewOutboundSession(testRand(30+byte(i)), bob.IdentityKeys().Curve25519, to.key.Key)
		if err != nil {
			f.Fatal(err)
		}
		for j := range to.n {
			text := string(rune('a'+i)) + string(rune('0'+j))
			_, body, err := s.Encrypt(testRand(40+byte(i)), []byte(text))
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, preKeySeed{body, to.from.IdentityKeys().Curve25519, text, s})
		}
	}
	return bob, a.IdentityKeys().Curve25519, seeds
}

// FuzzNewInboundSession hands arbitrary pre-key message bodies to an account
// with one-time and fallback keys, naming Alice as the expected sender or
// not. Properties: no panic; on error no session or plaintext and the account
// byte-identical; a success decrypts a message that was really sent (its
// inner message is a seed's, and so is its plaintext), removes the one-time
// key used and nothing else (a fallback key is kept), and gives a session
// whose reply the sender decrypts; an untouched seed always succeeds unless
// it is from someone other than the expected sender.
func FuzzNewInboundSession(f *testing.F) {
	bob, alice, seeds := preKeySeeds(f)
	inners := make([][]byte, len(seeds))
	for i, s := range seeds {
		inners[i] = s.inner(f)
		for _, b := range nearMisses(s.body) {
			f.Add(b, false)
		}
		f.Add(s.body, true)
	}
	f.Fuzz(func(t *testing.T, body []byte, checkSender bool) {
		msg, err := ParsePreKeyMessage(body)
		if err != nil {
			return // FuzzParseMessages covers the parser
		}
		var expected *Curve25519PublicKey
		if checkSender {
			expected = &alice
		}
		acc := bob.Clone()
		before := accountState(acc)
		s, pt, err := acc.NewInboundSession(expected, msg)
		if err != nil {
			if s != nil || pt != nil {
				t.Fatalf("partial result with error %v", err)
			}
			if !bytes.Equal(before, accountState(acc)) {
				t.Fatalf("failed inbound session (%v) changed the account", err)
			}
			for _, seed := range seeds {
				if bytes.Equal(body, seed.body) && (!checkSender || seed.sender == alice) {
					t.Fatalf("untouched seed %q refused: %v", seed.plaintext, err)
				}
			}
			return
		}
		i := 0
		for i < len(seeds) && !bytes.Equal(msg.Message().Bytes(), inners[i]) {
			i++
		}
		if i == len(seeds) {
			t.Fatalf("decrypted a message nobody sent: %x", body)
		}
		seed := seeds[i]
		if string(pt) != seed.plaintext || msg.IdentityKey() != seed.sender || s.ID() != msg.SessionID() {
			t.Fatalf("decrypted %q in session %s; the seed is %q", pt, s.ID(), seed.plaintext)
		}
		if checkSender && seed.sender != alice {
			t.Fatal("accepted a message from an unexpected sender")
		}
		checkKeyUsed(t, bob, acc, msg.OneTimeKey())
		typ, reply, err := s.Encrypt(testRand(1), []byte("reply"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := seed.from.Clone().Decrypt(typ, reply); err != nil || string(got) != "reply" {
			t.Fatalf("sender cannot read the reply: %q, %v", got, err)
		}
	})
}

// checkKeyUsed checks after a successful inbound session that the account
// lost exactly the one-time key used, or nothing for a fallback key.
func checkKeyUsed(t *testing.T, before, after *Account, used Curve25519PublicKey) {
	t.Helper()
	want := before.Clone()
	k, pos := want.findKey(used)
	if k == nil {
		t.Fatal("a session was made on a key the account does not hold")
	}
	if pos >= 0 {
		want.removeOneTimeKey(pos)
	}
	if !bytes.Equal(accountState(want), accountState(after)) {
		t.Fatalf("the account changed other than by dropping one-time key %d", pos)
	}
}

// FuzzParseMessages parses arbitrary bytes as a normal and as a pre-key
// message. Properties: no panic; an error matches ErrDecode and comes with no
// message; a parsed message owns its bytes, gives them back exactly, and
// parses again from them to the same fields, as does a pre-key message's
// inner message.
func FuzzParseMessages(f *testing.F) {
	alice, bob := newSessionPairSeed(f, 60)
	typ, pre := encrypt(f, alice, "pre-key")
	if typ != MessageTypePreKey {
		f.Fatalf("type %d", typ)
	}
	mustDecrypt(f, bob, typ, pre, "pre-key")
	_, normal := encrypt(f, bob, "normal")
	for _, b := range [][]byte{pre, normal, {}, {3}} {
		for _, m := range nearMisses(b) {
			f.Add(m)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		m, err := ParseMessage(in)
		if err != nil {
			if m != nil || !errors.Is(err, ErrDecode) {
				t.Fatalf("got %v, %v", m, err)
			}
		} else {
			clear(in) // the message must not alias its input
			checkMessage(t, m, body)
		}
		copy(in, body)
		p, err := ParsePreKeyMessage(in)
		if err != nil {
			if p != nil || !errors.Is(err, ErrDecode) {
				t.Fatalf("got %v, %v", p, err)
			}
			return
		}
		clear(in)
		if !bytes.Equal(p.Bytes(), body) {
			t.Fatalf("pre-key message %x gives back %x", body, p.Bytes())
		}
		q, err := ParsePreKeyMessage(p.Bytes())
		if err != nil {
			t.Fatalf("Bytes of a parsed message do not parse: %v", err)
		}
		if q.IdentityKey() != p.IdentityKey() || q.BaseKey() != p.BaseKey() || q.OneTimeKey() != p.OneTimeKey() ||
			q.SessionID() != p.SessionID() || !bytes.Equal(q.Message().Bytes(), p.Message().Bytes()) {
			t.Fatal("re-parsing changed the fields")
		}
		inner := p.Message()
		checkMessage(t, inner, inner.Bytes())
	})
}

// checkMessage checks that m gives back want, that Bytes returns a copy, and
// that re-parsing gives the same fields.
func checkMessage(t *testing.T, m *Message, want []byte) {
	t.Helper()
	b := m.Bytes()
	if !bytes.Equal(b, want) {
		t.Fatalf("message %x gives back %x", want, b)
	}
	clear(b)
	n, err := ParseMessage(m.Bytes())
	if err != nil {
		t.Fatalf("Bytes of a parsed message do not parse: %v", err)
	}
	if n.RatchetKey() != m.RatchetKey() || n.ChainIndex() != m.ChainIndex() || !bytes.Equal(n.Bytes(), want) {
		t.Fatal("re-parsing changed the fields")
	}
}

// FuzzUnpickleOwnFormat seals arbitrary bytes in xolm's pickle envelope and
// opens them as an account and as a session, so that the fuzzer reaches the
// decoders behind the authentication. Properties: no panic; an error is a
// format or version error, never an authentication one, and comes with no
// object; a decoded object pickles to an encoding of the same length as its
// input, which unpickles to an object that encodes the same again.
func FuzzUnpickleOwnFormat(f *testing.F) {
	for _, p := range ownPickleSeeds(f) {
		kind := pickle.KindAccount
		if _, err := UnpickleSession(p, testPickleKey, testAD); err == nil {
			kind = pickle.KindSession
		}
		raw, err := pickle.Open(testPickleKey, kind, testAD, p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(raw[:len(raw)-1])
		f.Add(append(bytes.Clone(raw), 0))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := UnpickleAccount(seal(pickle.KindAccount, raw), testPickleKey, testAD)
		checkUnpickleError(t, a == nil, err)
		if err == nil {
			b, err := UnpickleAccount(a.Pickle(testPickleKey, testAD), testPickleKey, testAD)
			if err != nil {
				t.Fatalf("a decoded account does not unpickle again: %v", err)
			}
			enc := accountState(a)
			if len(enc) != len(raw) || !bytes.Equal(enc, accountState(b)) {
				t.Fatalf("account %x re-encodes as %x, then %x", raw, enc, accountState(b))
			}
			sameAccountBehaviour(t, a, b)
			if m := []byte("signs under the key it advertises"); !a.IdentityKeys().Ed25519.Verify(m, a.Sign(m)) {
				t.Fatalf("account %x signs with a key other than the one it advertises", raw)
			}
		}
		s, err := UnpickleSession(seal(pickle.KindSession, raw), testPickleKey, testAD)
		checkUnpickleError(t, s == nil, err)
		if err == nil {
			u, err := UnpickleSession(s.Pickle(testPickleKey, testAD), testPickleKey, testAD)
			if err != nil {
				t.Fatalf("a decoded session does not unpickle again: %v", err)
			}
			enc := sessionState(s)
			if len(enc)+4 != len(raw) || !bytes.Equal(enc, sessionState(u)) || u.ID() != s.ID() {
				t.Fatalf("session %x re-encodes as %x, then %x", raw, enc, sessionState(u))
			}
		}
	})
}

// checkUnpickleError checks the outcome of unpickling an authentic blob.
func checkUnpickleError(t *testing.T, isNil bool, err error) {
	t.Helper()
	var ve *PickleVersionError
	switch {
	case err == nil && isNil:
		t.Fatal("no object and no error")
	case err != nil && !isNil:
		t.Fatalf("an object returned with error %v", err)
	case err != nil && !errors.Is(err, ErrPickleFormat) && !errors.As(err, &ve):
		t.Fatalf("authentic pickle refused with %v", err)
	}
}

// ownPickleSeeds returns pickles of every shape: accounts with and without
// one-time and fallback keys, one with libolm's expanded Ed25519 key, and
// sessions on both sides with several chains and skipped message keys.
func ownPickleSeeds(f *testing.F) [][]byte {
	empty := newAccount(f, 70, 0)
	full := newAccount(f, 71, 5)
	full.MarkKeysAsPublished()
	r := testRand(72)
	for range 2 {
		if err := full.GenerateOneTimeKeys(r, 2); err != nil {
			f.Fatal(err)
		}
		if err := full.GenerateFallbackKey(r); err != nil {
			f.Fatal(err)
		}
	}
	imported, err := ImportLibolmAccount(full.LibolmPickle(nil), nil)
	if err != nil {
		f.Fatal(err)
	}
	alice, bob := newSessionPairSeed(f, 73)
	for range 2 {
		encryptAndDeliver(f, bob, alice)
		encryptAndDeliver(f, alice, bob)
	}
	sendN(f, alice, "m", 3)[2].decrypt(f, bob)
	fresh, _ := newSessionPairSeed(f, 76)
	var out [][]byte
	for _, a := range []*Account{empty, full, imported} {
		out = append(out, a.Pickle(testPickleKey, testAD))
	}
	for _, s := range []*Session{alice, bob, fresh} {
		out = append(out, s.Pickle(testPickleKey, testAD))
	}
	return out
}
