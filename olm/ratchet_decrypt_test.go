package olm

import (
	"errors"
	"fmt"
	"testing"
)

type sent struct {
	typ  MessageType
	body []byte
	text string
}

func sendN(t testing.TB, s *Session, prefix string, n int) []sent {
	t.Helper()
	out := make([]sent, n)
	for i := range out {
		text := fmt.Sprint(prefix, i)
		typ, body := encrypt(t, s, text)
		out[i] = sent{typ, body, text}
	}
	return out
}

func (m sent) decrypt(t testing.TB, s *Session) {
	t.Helper()
	mustDecrypt(t, s, m.typ, m.body, m.text)
}

func TestOutOfOrderWithinChain(t *testing.T) {
	alice, bob := newSessionPair(t)
	ms := sendN(t, alice, "m", 5)
	for _, i := range []int{4, 2, 0, 3, 1} {
		ms[i].decrypt(t, bob)
	}
	if len(bob.ratchet.skipped) != 0 {
		t.Errorf("%d skipped keys left after every message arrived", len(bob.ratchet.skipped))
	}
	// Each message decrypts once; a replay fails and changes nothing.
	for _, m := range ms {
		decryptFails(t, bob, m.typ, m.body, ErrBadMAC)
	}
}

// The key for a message skipped over more than MaxSkippedMessageKeys
// messages ago is gone.
func TestSkippedKeyLimit(t *testing.T) {
	alice, bob := newSessionPair(t)
	ms := sendN(t, alice, "m", MaxSkippedMessageKeys+2)
	ms[len(ms)-1].decrypt(t, bob)
	if len(bob.ratchet.skipped) != MaxSkippedMessageKeys {
		t.Fatalf("%d skipped keys kept, want %d", len(bob.ratchet.skipped), MaxSkippedMessageKeys)
	}
	decryptFails(t, bob, ms[0].typ, ms[0].body, ErrBadMAC)
	for _, m := range ms[1 : len(ms)-1] {
		m.decrypt(t, bob)
	}
}

// Skipped keys are one list for the session, newest first, across chains.
func TestSkippedKeysAcrossChains(t *testing.T) {
	alice, bob := newSessionPair(t)
	encryptAndDeliver(t, bob, alice) // Alice has heard from Bob: her next message starts a chain
	chain1 := sendN(t, alice, "one-", 31)
	chain1[30].decrypt(t, bob) // skips 0..29
	encryptAndDeliver(t, bob, alice)
	chain2 := sendN(t, alice, "two-", 21)
	chain2[20].decrypt(t, bob) // skips 0..19; the 10 oldest of chain 1 are dropped
	if len(bob.ratchet.skipped) != MaxSkippedMessageKeys {
		t.Fatalf("%d skipped keys", len(bob.ratchet.skipped))
	}
	for i := range 10 {
		decryptFails(t, bob, chain1[i].typ, chain1[i].body, ErrBadMAC)
	}
	for _, m := range append(chain1[10:30], chain2[:20]...) {
		m.decrypt(t, bob)
	}
}

func encryptAndDeliver(t testing.TB, from, to *Session) {
	t.Helper()
	typ, body := encrypt(t, from, "ping")
	mustDecrypt(t, to, typ, body, "ping")
}

// skipSending advances a session's sending chain by n positions, as if n
// messages had been sent and lost.
func skipSending(s *Session, n int) {
	for range n {
		s.ratchet.sender.chain.advance()
	}
}

func TestMessageGapLimit(t *testing.T) {
	t.Run("known chain", func(t *testing.T) {
		alice, bob := newSessionPair(t) // bob's chain for alice is at 1
		skipSending(alice, MaxMessageGap)
		typ, body := encrypt(t, alice, "far")
		typ2, body2 := encrypt(t, alice, "too far")
		tooFar := bob.Clone()
		mustDecrypt(t, bob, typ, body, "far") // index 2001: a gap of exactly 2000
		checkGap(t, tooFar, typ2, body2, MaxMessageGap+1)
	})
	t.Run("new chain", func(t *testing.T) {
		alice, bob := newSessionPair(t)
		encryptAndDeliver(t, bob, alice)
		encryptAndDeliver(t, alice, bob)
		// Bob's next message starts a chain at index 0; lose the first 2000.
		encrypt(t, bob, "lost")
		skipSending(bob, MaxMessageGap-1)
		typ, body := encrypt(t, bob, "far")
		typ2, body2 := encrypt(t, bob, "too far")
		// A fresh copy of Alice that never saw this chain: both messages are on
		// a new chain for her.
		tooFar := alice.Clone()
		mustDecrypt(t, alice, typ, body, "far") // index 2000
		typ3, body3 := encrypt(t, alice, "ack")
		mustDecrypt(t, bob, typ3, body3, "ack")
		checkGap(t, tooFar, typ2, body2, MaxMessageGap+1)
	})
}

func checkGap(t *testing.T, s *Session, typ MessageType, body []byte, gap uint32) {
	t.Helper()
	decryptFails(t, s, typ, body, nil)
	_, err := s.Decrypt(typ, body)
	var ge *MessageGapError
	if !errors.As(err, &ge) || ge.Gap != gap || ge.Max != MaxMessageGap {
		t.Fatalf("err = %v, want a gap of %d", err, gap)
	}
}

// Only the MaxReceiverChains newest receiving chains are kept: a late message
// on an older chain no longer decrypts.
func TestReceiverChainEviction(t *testing.T) {
	for _, rounds := range []int{MaxReceiverChains - 1, MaxReceiverChains} {
		t.Run(fmt.Sprint(rounds, " newer chains"), func(t *testing.T) {
			alice, bob := newSessionPair(t)
			encryptAndDeliver(t, bob, alice)
			late := sendN(t, alice, "late", 2) // a new chain for bob
			late[1].decrypt(t, bob)
			for range rounds {
				encryptAndDeliver(t, bob, alice)
				encryptAndDeliver(t, alice, bob) // each a new chain for bob
			}
			if rounds < MaxReceiverChains {
				late[0].decrypt(t, bob)
			} else {
				decryptFails(t, bob, late[0].typ, late[0].body, ErrBadMAC)
			}
			if n := len(bob.ratchet.receivers); n > MaxReceiverChains {
				t.Fatalf("%d receiver chains", n)
			}
		})
	}
}

// A peer may only start a new chain after receiving from our current one;
// otherwise the message is refused as libolm refuses it.
func TestNewChainNeedsSendingChain(t *testing.T) {
	alice, bob := newSessionPair(t)
	// Bob has no sending chain yet. A message on an unknown ratchet key
	// (here one from another session) cannot be decrypted.
	other, _ := newSessionPairSeed(t, 100)
	encryptAndDeliver(t, bob, alice)
	encryptAndDeliver(t, alice, bob)
	_, body := encrypt(t, other, "stray")
	pre, err := ParsePreKeyMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	decryptFails(t, bob, MessageTypeNormal, pre.Message().Bytes(), ErrBadMAC)
}

// Every single-bit change to a message fails, and leaves the session
// byte-for-byte unchanged.
func TestEveryBitFlipFails(t *testing.T) {
	alice, bob := newSessionPair(t)
	check := func(name string, typ MessageType, body []byte, to *Session, want string) {
		t.Run(name, func(t *testing.T) {
			for i := range len(body) * 8 {
				flipped := append([]byte(nil), body...)
				flipped[i/8] ^= 1 << (i % 8)
				decryptFails(t, to, typ, flipped, nil)
			}
			mustDecrypt(t, to, typ, body, want)
		})
	}
	typ, body := encrypt(t, alice, "pre-key")
	check("pre-key", typ, body, bob, "pre-key")
	typ, body = encrypt(t, bob, "new chain")
	check("normal on a new chain", typ, body, alice, "new chain")
	typ, body = encrypt(t, bob, "same chain")
	check("normal on a known chain", typ, body, alice, "same chain")
	ms := sendN(t, bob, "skipped", 2)
	ms[1].decrypt(t, alice)
	check("normal with a skipped key", ms[0].typ, ms[0].body, alice, ms[0].text)
}

// A pre-key message of another session is refused by this one even though
// its inner message is well formed.
func TestPreKeyMessageOfAnotherSession(t *testing.T) {
	_, bob := newSessionPair(t)
	other, _ := newSessionPairSeed(t, 100)
	typ, body := encrypt(t, other, "elsewhere")
	decryptFails(t, bob, typ, body, ErrBadMAC)
}

// A low-order ratchet key is refused before any MAC is checked, and when it
// is the key we would ratchet from, by Encrypt; neither changes the session.
func TestNonContributoryRatchetKey(t *testing.T) {
	alice, bob := newSessionPair(t)
	encryptAndDeliver(t, bob, alice)
	_, body := encrypt(t, bob, "x")
	encryptAndDeliver(t, alice, bob) // alice has a sending chain, bob none
	zeroKey := append([]byte(nil), body...)
	copy(zeroKey[3:35], make([]byte, 32)) // the ratchet key field
	decryptFails(t, alice, MessageTypeNormal, zeroKey, ErrNonContributory)

	bob.ratchet.receivers[0].ratchetKey = Curve25519PublicKey{}
	before := sessionState(bob)
	if _, _, err := bob.Encrypt(testRand(1), []byte("x")); !errors.Is(err, ErrNonContributory) {
		t.Fatalf("err = %v", err)
	}
	if string(before) != string(sessionState(bob)) {
		t.Fatal("failed encrypt changed the session")
	}
}
