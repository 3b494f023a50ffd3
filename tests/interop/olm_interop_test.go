package interop

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// conversationRounds is how many ratchet turnovers the live tests make.
const conversationRounds = 24

func parsePreKey(t *testing.T, m olmMessage) *olm.PreKeyMessage {
	t.Helper()
	body, err := b64.Decode(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := olm.ParsePreKeyMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestOlmXolmToLibolm: xolm starts sessions with a libolm account, from a
// one-time key and from its fallback key.
func TestOlmXolmToLibolm(t *testing.T) {
	l := startLibolm(t)
	alice := newXolmAccount(t)
	bob := l.newAccount()
	bobCurve, bobEd := bob.identityKeys()
	otks := bob.publishOneTimeKeys(3)

	s, err := alice.NewOutboundSession(rand.Reader, bobCurve, parseCurve(t, otks["AAAAAg"]))
	if err != nil {
		t.Fatal(err)
	}
	out := &xolmSession{t: t, name: "xolm alice", s: s}
	pre, texts := preKeyMessages(t, out, 3)

	// libolm's Bob gets the second message first.
	in, got := bob.inbound(pre[1], true)
	in.name = "libolm bob"
	if got != texts[1] {
		t.Fatalf("libolm decrypted %q, want %q", got, texts[1])
	}
	if in.id() != s.ID() {
		t.Fatalf("session ids: libolm %s, xolm %s", in.id(), s.ID())
	}
	receive(t, in, pre[0], texts[0])
	receive(t, in, pre[2], texts[2])
	rejects(t, in, pre[2], "a replayed pre-key message")
	l.fails("session.create_inbound", map[string]any{"account": bob.h, "body": pre[0].Body}, libolmBadMessageKeyID)

	if s.HasReceivedMessage() {
		t.Fatal("xolm's session reports a message received before any reply")
	}
	converse(t, out, in, conversationRounds)
	if !s.HasReceivedMessage() {
		t.Fatal("xolm's session reports no message received after replies")
	}

	// Sessions from libolm's fallback key, which libolm keeps.
	fallback := parseCurve(t, bob.publishFallbackKey())
	for _, name := range []string{"carol", "dave"} {
		s, err := newXolmAccount(t).NewOutboundSession(rand.Reader, bobCurve, fallback)
		if err != nil {
			t.Fatal(err)
		}
		out := &xolmSession{t: t, name: "xolm " + name, s: s}
		pre, texts := preKeyMessages(t, out, 1)
		in, got := bob.inbound(pre[0], false)
		in.name = "libolm bob with " + name
		if got != texts[0] {
			t.Fatalf("libolm decrypted %q, want %q", got, texts[0])
		}
		converse(t, out, in, 4)
	}

	// Signatures cross too.
	message := []byte(`{"algorithms":["m.olm.v1.curve25519-aes-sha2"],"user_id":"@alice:example.org"}`)
	signature := alice.Sign(message)
	verify := map[string]any{"key": alice.IdentityKeys().Ed25519.String(), "message_b64": message, "signature": b64.Encode(signature)}
	l.call("utility.ed25519_verify", verify, nil)
	signature[0] ^= 0x01
	verify["signature"] = b64.Encode(signature)
	l.fails("utility.ed25519_verify", verify, libolmBadMAC)
	verifyEd25519(t, bobEd, message, l.str("account.sign", map[string]any{"account": bob.h, "message_b64": message}))
}

// TestOlmLibolmToXolm: libolm starts sessions with an xolm account, from a
// one-time key and from its fallback key.
func TestOlmLibolmToXolm(t *testing.T) {
	l := startLibolm(t)
	bob := newXolmAccount(t)
	if err := bob.GenerateOneTimeKeys(rand.Reader, 3); err != nil {
		t.Fatal(err)
	}
	otks := bob.OneTimeKeys()
	bob.MarkKeysAsPublished()
	alice := l.newAccount()
	aliceCurve, _ := alice.identityKeys()

	out := alice.outbound(bob.IdentityKeys().Curve25519, otks[1].Key)
	out.name = "libolm alice"
	pre, texts := preKeyMessages(t, out, 3)

	// xolm's Bob gets the second message first, and checks the sender.
	msg := parsePreKey(t, pre[1])
	before := bob.LibolmPickle(snapshotKey)
	wrong := bob.IdentityKeys().Curve25519
	if _, _, err := bob.NewInboundSession(&wrong, msg); !errors.Is(err, olm.ErrMismatchedIdentityKey) {
		t.Fatalf("inbound session with the wrong sender key: got %v, want ErrMismatchedIdentityKey", err)
	}
	if _, _, err := bob.NewInboundSession(&aliceCurve, parsePreKey(t, tamper(pre[1]))); !errors.Is(err, olm.ErrBadMAC) {
		t.Fatalf("inbound session from a tampered message: got %v, want ErrBadMAC", err)
	}
	if bob.LibolmPickle(snapshotKey) != before {
		t.Fatal("failed inbound sessions changed the account")
	}
	s, plaintext, err := bob.NewInboundSession(&aliceCurve, msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(plaintext) != texts[1] {
		t.Fatalf("xolm decrypted %q, want %q", plaintext, texts[1])
	}
	if s.ID() != out.id() {
		t.Fatalf("session ids: xolm %s, libolm %s", s.ID(), out.id())
	}
	in := &xolmSession{t: t, name: "xolm bob", s: s}
	if !s.MatchesInboundSession(&aliceCurve, parsePreKey(t, pre[0])) {
		t.Fatal("xolm's session does not match the other pre-key messages of its session")
	}
	receive(t, in, pre[0], texts[0])
	receive(t, in, pre[2], texts[2])
	rejects(t, in, pre[2], "a replayed pre-key message")
	if _, _, err := bob.NewInboundSession(nil, parsePreKey(t, pre[0])); !errors.Is(err, olm.ErrMissingOneTimeKey) {
		t.Fatalf("second session from a used one-time key: got %v, want ErrMissingOneTimeKey", err)
	}
	converse(t, out, in, conversationRounds)

	// Sessions from xolm's fallback key, which xolm keeps.
	if err := bob.GenerateFallbackKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	fallback, ok := bob.UnpublishedFallbackKey()
	if !ok {
		t.Fatal("no unpublished fallback key")
	}
	bob.MarkKeysAsPublished()
	for _, name := range []string{"carol", "dave"} {
		sender := l.newAccount()
		senderCurve, _ := sender.identityKeys()
		out := sender.outbound(bob.IdentityKeys().Curve25519, fallback.Key)
		out.name = "libolm " + name
		pre, texts := preKeyMessages(t, out, 1)
		s, plaintext, err := bob.NewInboundSession(&senderCurve, parsePreKey(t, pre[0]))
		if err != nil {
			t.Fatalf("session from the fallback key for %s: %v", name, err)
		}
		if string(plaintext) != texts[0] {
			t.Fatalf("xolm decrypted %q, want %q", plaintext, texts[0])
		}
		converse(t, out, &xolmSession{t: t, name: "xolm bob with " + name, s: s}, 4)
	}
}
