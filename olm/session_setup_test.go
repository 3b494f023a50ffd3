package olm

import (
	"bytes"
	"errors"
	"testing"
)

// accountState is the account's complete state in its own encoding.
func accountState(a *Account) []byte { return a.encode() }

// inboundFails checks that creating an inbound session fails with target and
// leaves the account byte-for-byte unchanged.
func inboundFails(t *testing.T, a *Account, their *Curve25519PublicKey, msg *PreKeyMessage, target error) {
	t.Helper()
	before := accountState(a)
	s, pt, err := a.NewInboundSession(their, msg)
	if err == nil {
		t.Fatalf("inbound session created: %q", pt)
	}
	if s != nil || pt != nil {
		t.Fatal("partial result on error")
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
	if !bytes.Equal(before, accountState(a)) {
		t.Fatal("failed inbound session creation changed the account")
	}
}

func preKeyTo(t *testing.T, from *Account, to *Account, key Curve25519PublicKey, text string) (*Session, *PreKeyMessage) {
	t.Helper()
	s, err := from.NewOutboundSession(testRand(50), to.IdentityKeys().Curve25519, key)
	if err != nil {
		t.Fatal(err)
	}
	_, body := encrypt(t, s, text)
	m, err := ParsePreKeyMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

func TestInboundSessionRemovesOneTimeKeyOnlyOnSuccess(t *testing.T) {
	alice, bob := newAccount(t, 1, 0), newAccount(t, 2, 3)
	otk := bob.OneTimeKeys()[1]
	out, msg := preKeyTo(t, alice, bob, otk.Key, "hello")

	// A tampered inner message does not authenticate: the key stays.
	body := msg.Bytes()
	body[len(body)-1] ^= 1
	tampered, err := ParsePreKeyMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	inboundFails(t, bob, nil, tampered, ErrBadMAC)

	in, pt, err := bob.NewInboundSession(nil, msg)
	if err != nil || string(pt) != "hello" {
		t.Fatal(pt, err)
	}
	if in.ID() != out.ID() || in.ID() != msg.SessionID() {
		t.Fatal("session IDs differ")
	}
	for _, k := range bob.OneTimeKeys() {
		if k.ID == otk.ID {
			t.Fatal("used one-time key still held")
		}
	}
	if len(bob.OneTimeKeys()) != 2 {
		t.Fatal("other one-time keys removed")
	}
	// The same message again: its key is gone.
	inboundFails(t, bob, nil, msg, ErrMissingOneTimeKey)
}

func TestInboundSessionIdentityKey(t *testing.T) {
	alice, bob, mallory := newAccount(t, 1, 0), newAccount(t, 2, 1), newAccount(t, 3, 0)
	_, msg := preKeyTo(t, alice, bob, bob.OneTimeKeys()[0].Key, "hi")
	wrong := mallory.IdentityKeys().Curve25519
	inboundFails(t, bob, &wrong, msg, ErrMismatchedIdentityKey)
	right := alice.IdentityKeys().Curve25519
	if _, _, err := bob.NewInboundSession(&right, msg); err != nil {
		t.Fatal(err)
	}
}

func TestInboundSessionUnknownKey(t *testing.T) {
	alice, bob, carol := newAccount(t, 1, 0), newAccount(t, 2, 1), newAccount(t, 3, 1)
	_, msg := preKeyTo(t, alice, bob, carol.OneTimeKeys()[0].Key, "hi")
	inboundFails(t, bob, nil, msg, ErrMissingOneTimeKey)
}

// Fallback keys are found after one-time keys, current then previous, and
// are never removed; a forgotten one is gone.
func TestInboundSessionFallbackKeys(t *testing.T) {
	alice, bob := newAccount(t, 1, 0), newAccount(t, 2, 0)
	r := testRand(7)
	if err := bob.GenerateFallbackKey(r); err != nil {
		t.Fatal(err)
	}
	first, _ := bob.FallbackKey()
	_, m1 := preKeyTo(t, alice, bob, first.Key, "one")
	for range 2 { // used twice: still there
		if _, pt, err := bob.NewInboundSession(nil, m1); err != nil || string(pt) != "one" {
			t.Fatal(pt, err)
		}
	}
	if err := bob.GenerateFallbackKey(r); err != nil {
		t.Fatal(err)
	}
	second, _ := bob.FallbackKey()
	_, m2 := preKeyTo(t, alice, bob, second.Key, "two")
	for _, m := range []*PreKeyMessage{m1, m2} {
		if _, _, err := bob.NewInboundSession(nil, m); err != nil {
			t.Fatal(err)
		}
	}
	bob.ForgetOldFallbackKey()
	inboundFails(t, bob, nil, m1, ErrMissingOneTimeKey)
	if _, _, err := bob.NewInboundSession(nil, m2); err != nil {
		t.Fatal(err)
	}
}

// A low-order (all-zero DH) key is refused, whoever sends it.
func TestNonContributoryKeysRejected(t *testing.T) {
	alice, bob := newAccount(t, 1, 0), newAccount(t, 2, 1)
	var zero Curve25519PublicKey
	if _, err := alice.NewOutboundSession(testRand(4), zero, bob.OneTimeKeys()[0].Key); !errors.Is(err, ErrNonContributory) {
		t.Fatalf("zero identity key: %v", err)
	}
	if _, err := alice.NewOutboundSession(testRand(4), bob.IdentityKeys().Curve25519, zero); !errors.Is(err, ErrNonContributory) {
		t.Fatalf("zero one-time key: %v", err)
	}
	// A pre-key message claiming a zero base key.
	_, msg := preKeyTo(t, alice, bob, bob.OneTimeKeys()[0].Key, "hi")
	body := msg.Bytes()
	copy(body[1+2+32+2:], make([]byte, 32)) // the base key field
	bad, err := ParsePreKeyMessage(body)
	if err != nil || !bad.BaseKey().IsZero() {
		t.Fatal("could not build the message", err)
	}
	inboundFails(t, bob, nil, bad, ErrNonContributory)
}

func TestMatchesInboundSession(t *testing.T) {
	alice, bob, carol := newAccount(t, 1, 0), newAccount(t, 2, 2), newAccount(t, 3, 0)
	_, m1 := preKeyTo(t, alice, bob, bob.OneTimeKeys()[0].Key, "one")
	_, m2 := preKeyTo(t, carol, bob, bob.OneTimeKeys()[1].Key, "two")
	in, _, err := bob.NewInboundSession(nil, m1)
	if err != nil {
		t.Fatal(err)
	}
	ak, ck := alice.IdentityKeys().Curve25519, carol.IdentityKeys().Curve25519
	for _, c := range []struct {
		their *Curve25519PublicKey
		msg   *PreKeyMessage
		want  bool
	}{
		{nil, m1, true}, {&ak, m1, true}, {&ck, m1, false}, {nil, m2, false}, {&ck, m2, false},
	} {
		if got := in.MatchesInboundSession(c.their, c.msg); got != c.want {
			t.Errorf("match(%v, %s) = %t", c.their, c.msg.SessionID(), got)
		}
		if got := c.msg.SessionID() == in.ID(); c.their == nil && got != c.want {
			t.Error("session-id comparison disagrees")
		}
	}
}

func TestOutboundSessionRandomness(t *testing.T) {
	alice, bob := newAccount(t, 1, 0), newAccount(t, 2, 1)
	r := &countingRandom{}
	if _, err := alice.NewOutboundSession(r, bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key); err != nil || r.n != 64 {
		t.Fatalf("read %d bytes, %v", r.n, err)
	}
	if _, err := alice.NewOutboundSession(bytes.NewReader(make([]byte, 63)), bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key); err == nil {
		t.Fatal("short randomness accepted")
	}
}
