package olm

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/libolmpickle"
)

// testRand returns a deterministic random stream for the given seed.
func testRand(seed byte) *mrand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

// sessionState is the session's complete state in its own encoding, for
// byte-for-byte comparisons.
func sessionState(s *Session) []byte {
	var e libolmpickle.Encoder
	s.encode(&e)
	return e.Result()
}

// newAccount creates an account with n one-time keys.
func newAccount(t testing.TB, seed byte, n int) *Account {
	t.Helper()
	r := testRand(seed)
	a, err := NewAccount(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.GenerateOneTimeKeys(r, n); err != nil {
		t.Fatal(err)
	}
	return a
}

// newSessionPair sets up Alice's outbound and Bob's inbound session with the
// first pre-key message, "first".
func newSessionPair(t testing.TB) (alice, bob *Session) {
	t.Helper()
	return newSessionPairSeed(t, 1)
}

// newSessionPairSeed is newSessionPair between other accounts.
func newSessionPairSeed(t testing.TB, seed byte) (alice, bob *Session) {
	t.Helper()
	a, b := newAccount(t, seed, 0), newAccount(t, seed+1, 1)
	out, err := a.NewOutboundSession(testRand(seed+2), b.IdentityKeys().Curve25519, b.OneTimeKeys()[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	typ, body := encrypt(t, out, "first")
	if typ != MessageTypePreKey {
		t.Fatalf("first message has type %d", typ)
	}
	pre, err := ParsePreKeyMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	in, pt, err := b.NewInboundSession(nil, pre)
	if err != nil || string(pt) != "first" {
		t.Fatalf("inbound: %q, %v", pt, err)
	}
	return out, in
}

var encryptRand = testRand(9)

func encrypt(t testing.TB, s *Session, msg string) (MessageType, []byte) {
	t.Helper()
	typ, body, err := s.Encrypt(encryptRand, []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	return typ, body
}

func mustDecrypt(t testing.TB, s *Session, typ MessageType, body []byte, want string) {
	t.Helper()
	pt, err := s.Decrypt(typ, body)
	if err != nil {
		t.Fatalf("decrypt %q: %v", want, err)
	}
	if string(pt) != want {
		t.Fatalf("decrypted %q, want %q", pt, want)
	}
}

// decryptFails checks that decrypting fails with an error matching target
// and leaves the session byte-for-byte unchanged.
func decryptFails(t testing.TB, s *Session, typ MessageType, body []byte, target error) {
	t.Helper()
	before := sessionState(s)
	pt, err := s.Decrypt(typ, body)
	if err == nil {
		t.Fatalf("decrypt succeeded: %q", pt)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
	if !bytes.Equal(before, sessionState(s)) {
		t.Fatal("a failed decryption changed the session")
	}
}

func TestSessionRoundTrip(t *testing.T) {
	alice, bob := newSessionPair(t)
	if alice.ID() != bob.ID() {
		t.Fatal("session IDs differ")
	}
	if alice.HasReceivedMessage() || !bob.HasReceivedMessage() {
		t.Fatal("HasReceivedMessage")
	}
	// Until Alice hears from Bob, she keeps sending pre-key messages, and
	// Bob's existing session decrypts them.
	for i := range 3 {
		typ, body := encrypt(t, alice, fmt.Sprint("pre-key ", i))
		if typ != MessageTypePreKey {
			t.Fatalf("message %d has type %d", i, typ)
		}
		mustDecrypt(t, bob, typ, body, fmt.Sprint("pre-key ", i))
	}
	// Bob answers with normal messages; then both directions turn the
	// ratchet over and over.
	for round := range 10 {
		for i := range round%3 + 1 {
			typ, body := encrypt(t, bob, fmt.Sprint("bob ", round, i))
			if typ != MessageTypeNormal {
				t.Fatalf("bob sent type %d", typ)
			}
			mustDecrypt(t, alice, typ, body, fmt.Sprint("bob ", round, i))
		}
		for i := range round%2 + 1 {
			typ, body := encrypt(t, alice, fmt.Sprint("alice ", round, i))
			if typ != MessageTypeNormal {
				t.Fatalf("alice sent type %d after hearing from bob", typ)
			}
			mustDecrypt(t, bob, typ, body, fmt.Sprint("alice ", round, i))
		}
	}
	if len(alice.ratchet.receivers) != MaxReceiverChains || len(bob.ratchet.receivers) != MaxReceiverChains {
		t.Errorf("receiver chains: alice %d, bob %d", len(alice.ratchet.receivers), len(bob.ratchet.receivers))
	}
}

func TestSessionEmptyAndLargePlaintexts(t *testing.T) {
	alice, bob := newSessionPair(t)
	for _, n := range []int{0, 1, 15, 16, 17, 1 << 16} {
		msg := strings.Repeat("x", n)
		typ, body := encrypt(t, alice, msg)
		mustDecrypt(t, bob, typ, body, msg)
		typ, body = encrypt(t, bob, msg)
		mustDecrypt(t, alice, typ, body, msg)
	}
}

// Encrypt reads randomness only to start a sending chain: 32 bytes on the
// first message after one from the peer, none otherwise.
func TestEncryptReadsRandomnessOnlyForNewChains(t *testing.T) {
	alice, bob := newSessionPair(t)
	steps := []struct {
		from, to *Session
		want     int
	}{
		{alice, bob, 0}, // Alice's first chain came with the session
		{bob, alice, 32},
		{bob, alice, 0},
		{alice, bob, 32},
		{alice, bob, 0},
	}
	for i, st := range steps {
		r := &countingRandom{}
		typ, body, err := st.from.Encrypt(r, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if r.n != st.want {
			t.Errorf("step %d read %d random bytes, want %d", i, r.n, st.want)
		}
		mustDecrypt(t, st.to, typ, body, "x")
	}
}

// A failing random source leaves the session as it was.
func TestEncryptRandomnessFailure(t *testing.T) {
	alice, bob := newSessionPair(t)
	before := sessionState(bob)
	if _, _, err := bob.Encrypt(bytes.NewReader(make([]byte, 31)), []byte("x")); err == nil {
		t.Fatal("encrypt with short randomness succeeded")
	}
	if !bytes.Equal(before, sessionState(bob)) {
		t.Fatal("failed encrypt changed the session")
	}
	typ, body := encrypt(t, bob, "x")
	mustDecrypt(t, alice, typ, body, "x")
}

func TestSessionClone(t *testing.T) {
	alice, bob := newSessionPair(t)
	typ, body := encrypt(t, bob, "to both")
	copyA := alice.Clone()
	mustDecrypt(t, alice, typ, body, "to both")
	// The copy is still at the old state and can decrypt the same message.
	mustDecrypt(t, copyA, typ, body, "to both")
	if !bytes.Equal(sessionState(alice), sessionState(copyA)) {
		t.Fatal("clone diverged on the same input")
	}
	// Advancing one leaves the other alone.
	before := sessionState(copyA)
	typ, body = encrypt(t, alice, "only alice")
	if bytes.Equal(sessionState(alice), before) || !bytes.Equal(sessionState(copyA), before) {
		t.Fatal("clone shares state")
	}
	mustDecrypt(t, bob, typ, body, "only alice")
}

// Invariant 14: secrets never print.
func TestSessionRedaction(t *testing.T) {
	alice, _ := newSessionPair(t)
	want := "olm.Session{id:" + alice.ID() + ", secrets:redacted}"
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("s", "session", alice)
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log: %s", logs.String())
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		if got := fmt.Sprintf(f, alice); got != want {
			t.Errorf("%s: %s", f, got)
		}
	}
	root := enc64(alice.ratchet.root[:])
	if strings.Contains(fmt.Sprintf("%#v %x", alice, alice), root) {
		t.Error("root key printed")
	}
}

// FuzzSessionDecrypt feeds arbitrary messages to an established session: no
// input may panic, and any input that fails leaves the session unchanged.
func FuzzSessionDecrypt(f *testing.F) {
	alice, bob := newSessionPair(f)
	typ, pre := encrypt(f, alice, "pre-key")
	f.Add(int(typ), pre)
	encryptAndDeliver(f, alice, bob)
	typ, normal := encrypt(f, bob, "normal")
	f.Add(int(typ), normal)
	for _, i := range []int{0, 3, 36, 40, len(normal) - 9, len(normal) - 1} {
		f.Add(int(typ), flip(normal, i))
	}
	f.Add(int(typ), normal[:len(normal)-1])
	f.Add(0, []byte{3})
	f.Fuzz(func(t *testing.T, typ int, body []byte) {
		s := alice.Clone()
		before := sessionState(s)
		if _, err := s.Decrypt(MessageType(typ), body); err != nil && !bytes.Equal(before, sessionState(s)) {
			t.Fatal("failed decryption changed the session")
		}
	})
}
