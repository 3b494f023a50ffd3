package interop

import (
	"crypto/rand"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// sameJSON checks that xolm's JSON document holds what libolm returned
// (already decoded by the peer).
func sameJSON(t *testing.T, what string, xolmDoc []byte, libolmDoc any) {
	t.Helper()
	var x, l any
	if err := json.Unmarshal(xolmDoc, &x); err != nil {
		t.Fatalf("%s: xolm's %s: %v", what, xolmDoc, err)
	}
	if err := json.Unmarshal([]byte(mustJSON(t, libolmDoc)), &l); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x, l) {
		t.Fatalf("%s: xolm %s, libolm %s", what, xolmDoc, mustJSON(t, libolmDoc))
	}
}

// sameAccount checks that an account in xolm and one in libolm have the same
// identity, one-time and fallback keys and sign alike.
func sameAccount(t *testing.T, acc *olm.Account, lib libolmAccount) {
	t.Helper()
	for method, doc := range map[string][]byte{
		"account.identity_keys":            acc.IdentityKeysJSON(),
		"account.one_time_keys":            acc.OneTimeKeysJSON(),
		"account.fallback_key":             acc.FallbackKeyJSON(),
		"account.unpublished_fallback_key": acc.UnpublishedFallbackKeyJSON(),
	} {
		var got any
		lib.l.call(method, map[string]any{"account": lib.h}, &got)
		sameJSON(t, method, doc, got)
	}
	message := []byte("the same signature from the same key")
	if got := lib.l.str("account.sign", map[string]any{"account": lib.h, "message_b64": message}); got != b64.Encode(acc.Sign(message)) {
		t.Fatalf("libolm signs %s, xolm %s", got, b64.Encode(acc.Sign(message)))
	}
}

// keyedAccount is an xolm account holding published and unpublished one-time
// keys and a current and a previous fallback key, with the public keys that a
// peer could have claimed: a published one-time key and both fallback keys.
type keyedAccount struct {
	acc                *olm.Account
	published          olm.Curve25519PublicKey
	previous, fallback olm.Curve25519PublicKey
}

func newKeyedAccount(t *testing.T) keyedAccount {
	t.Helper()
	k := keyedAccount{acc: newXolmAccount(t)}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(k.acc.GenerateOneTimeKeys(rand.Reader, 4))
	must(k.acc.GenerateFallbackKey(rand.Reader))
	k.published = k.acc.OneTimeKeys()[2].Key
	previous, _ := k.acc.FallbackKey()
	k.previous = previous.Key
	k.acc.MarkKeysAsPublished()
	must(k.acc.GenerateOneTimeKeys(rand.Reader, 2))
	must(k.acc.GenerateFallbackKey(rand.Reader))
	fallback, _ := k.acc.FallbackKey()
	k.fallback = fallback.Key
	return k
}

// claimable are the keys a sender may use, each with whether it is a
// one-time key (which the receiver removes once used).
func (k keyedAccount) claimable() map[olm.Curve25519PublicKey]bool {
	return map[olm.Curve25519PublicKey]bool{k.published: true, k.previous: false, k.fallback: false}
}

// TestPickleXolmToLibolm: libolm unpickles what xolm's LibolmPickle writes,
// pickles it back to the same string, and carries on with it.
func TestPickleXolmToLibolm(t *testing.T) {
	l := startLibolm(t)
	key := randomPickleKey(t)

	t.Run("account", func(t *testing.T) {
		k := newKeyedAccount(t)
		lib := libolmAccount{l: l, h: l.unpickle("account", key, k.acc.LibolmPickle(key))}
		sameAccount(t, k.acc, lib)

		// The private halves came along: libolm opens sessions made to each
		// key a peer could have claimed.
		for theirs, oneTime := range k.claimable() {
			s, err := newXolmAccount(t).NewOutboundSession(rand.Reader, k.acc.IdentityKeys().Curve25519, theirs)
			if err != nil {
				t.Fatal(err)
			}
			out := &xolmSession{t: t, name: "xolm sender", s: s}
			pre, texts := preKeyMessages(t, out, 1)
			in, got := lib.inbound(pre[0], oneTime)
			in.name = "libolm with xolm's account"
			if got != texts[0] {
				t.Fatalf("libolm decrypted %q, want %q", got, texts[0])
			}
			converse(t, out, in, 3)
		}
	})

	t.Run("session", func(t *testing.T) {
		alice, bob := newXolmAccount(t), newKeyedAccount(t)
		s, err := alice.NewOutboundSession(rand.Reader, bob.acc.IdentityKeys().Curve25519, bob.published)
		if err != nil {
			t.Fatal(err)
		}
		out := &xolmSession{t: t, name: "xolm alice", s: s}
		pre, _ := preKeyMessages(t, out, 1)
		bs, _, err := bob.acc.NewInboundSession(nil, parsePreKey(t, pre[0]))
		if err != nil {
			t.Fatal(err)
		}
		converse(t, out, &xolmSession{t: t, name: "xolm bob", s: bs}, 4)

		// Bob skips two messages; their keys move into libolm with him.
		late := []string{"late 0", "late 1", "late 2"}
		msgs := make([]olmMessage, len(late))
		for i, text := range late {
			msgs[i] = out.encrypt(text)
		}
		receive(t, &xolmSession{t: t, name: "xolm bob", s: bs}, msgs[2], late[2])
		libBob := &libolmSession{l: l, h: l.unpickle("session", key, bs.LibolmPickle(key)), name: "libolm with xolm bob's session"}
		receive(t, libBob, msgs[0], late[0])
		receive(t, libBob, msgs[1], late[1])
		rejects(t, libBob, msgs[2], "a message xolm had decrypted")
		converse(t, out, libBob, 4)

		libAlice := &libolmSession{l: l, h: l.unpickle("session", key, s.LibolmPickle(key)), name: "libolm with xolm alice's session"}
		converse(t, libAlice, libBob, 4)
	})

	t.Run("session before a reply", func(t *testing.T) {
		bob := newKeyedAccount(t)
		s, err := newXolmAccount(t).NewOutboundSession(rand.Reader, bob.acc.IdentityKeys().Curve25519, bob.fallback)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := preKeyMessages(t, &xolmSession{t: t, name: "xolm alice", s: s}, 1)
		libAlice := &libolmSession{l: l, h: l.unpickle("session", key, s.LibolmPickle(key)), name: "libolm with xolm alice's session"}
		pre, texts := preKeyMessages(t, libAlice, 1)
		bs, plaintext, err := bob.acc.NewInboundSession(nil, parsePreKey(t, pre[0]))
		if err != nil {
			t.Fatal(err)
		}
		if string(plaintext) != texts[0] {
			t.Fatalf("xolm decrypted %q, want %q", plaintext, texts[0])
		}
		xolmBob := &xolmSession{t: t, name: "xolm bob", s: bs}
		receive(t, xolmBob, first[0], "pre-key message 0 from xolm alice, ünïcödé ☃")
		converse(t, libAlice, xolmBob, 4)
	})

	t.Run("megolm", func(t *testing.T) {
		out, err := megolm.NewOutboundGroupSession(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		in, err := megolm.NewInboundGroupSession(out.SessionKey())
		if err != nil {
			t.Fatal(err)
		}
		xolmIn := xolmInGroup{t: t, s: in}
		var bodies []string
		for i := range 3 {
			bodies = append(bodies, xolmOutGroup{t: t, s: out}.encrypt(groupText(i)))
			decryptsAt(t, xolmIn, bodies, i)
		}

		libOut := libolmOutGroup{l: l, h: l.unpickle("outbound_group", key, out.LibolmPickle(key))}
		var index uint32
		l.call("outbound_group.message_index", map[string]any{"session": libOut.h}, &index)
		if index != 3 || libOut.id() != out.ID() || libOut.sessionKey() != b64.Encode(out.SessionKey()) {
			t.Fatalf("libolm's copy of xolm's outbound session: index %d, id %s, session key %s", index, libOut.id(), libOut.sessionKey())
		}
		bodies = append(bodies, libOut.encrypt(groupText(3)))
		decryptsAt(t, xolmIn, bodies, 3)

		// An inbound session that has decrypted, and an imported one that
		// has not (and so is not verified yet).
		exported, err := in.Export(1)
		if err != nil {
			t.Fatal(err)
		}
		imported, err := megolm.ImportInboundGroupSession(exported)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*megolm.InboundGroupSession{in, imported} {
			libIn := libolmInGroup{l: l, h: l.unpickle("inbound_group", key, s.LibolmPickle(key))}
			if libIn.firstKnownIndex() != s.FirstKnownIndex() || libIn.id() != s.ID() {
				t.Fatalf("libolm's copy of xolm's inbound session: first known index %d, id %s", libIn.firstKnownIndex(), libIn.id())
			}
			if first := s.FirstKnownIndex(); first > 0 {
				failsAtUnknownIndex(t, libIn, bodies, int(first)-1)
			}
			for i := int(s.FirstKnownIndex()); i < len(bodies); i++ {
				decryptsAt(t, libIn, bodies, i)
			}
		}
	})
}
