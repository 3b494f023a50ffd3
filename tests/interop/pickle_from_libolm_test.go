package interop

import (
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// TestPickleLibolmToXolm: xolm imports libolm's pickles, writes them back
// byte for byte with LibolmPickle, and carries on with them.
func TestPickleLibolmToXolm(t *testing.T) {
	l := startLibolm(t)
	key := randomPickleKey(t)

	t.Run("account", func(t *testing.T) {
		lib := l.newAccount()
		otks := lib.publishOneTimeKeys(4)
		previous := lib.publishFallbackKey()
		l.call("account.generate_one_time_keys", map[string]any{"account": lib.h, "count": 2}, nil)
		l.call("account.generate_fallback_key", map[string]any{"account": lib.h}, nil)
		fallback := lib.keyJSON("account.unpublished_fallback_key")

		acc := importAccount(t, l.pickle("account", lib.h, key), key)
		sameAccount(t, acc, lib)

		// The private halves came along: xolm opens sessions made to a
		// published one-time key and to both fallback keys.
		claimable := []string{otks["AAAAAg"], previous}
		for _, k := range fallback {
			claimable = append(claimable, k)
		}
		for _, theirs := range claimable {
			sender := l.newAccount()
			out := sender.outbound(acc.IdentityKeys().Curve25519, parseCurve(t, theirs))
			out.name = "libolm sender"
			pre, texts := preKeyMessages(t, out, 1)
			s, plaintext, err := acc.NewInboundSession(nil, parsePreKey(t, pre[0]))
			if err != nil {
				t.Fatalf("xolm with libolm's account, a session to key %s: %v", theirs, err)
			}
			if string(plaintext) != texts[0] {
				t.Fatalf("xolm decrypted %q, want %q", plaintext, texts[0])
			}
			converse(t, out, &xolmSession{t: t, name: "xolm with libolm's account", s: s}, 3)
		}
	})

	t.Run("session", func(t *testing.T) {
		alice, bob := l.newAccount(), l.newAccount()
		bobCurve, _ := bob.identityKeys()
		otks := bob.publishOneTimeKeys(2)
		libAlice := alice.outbound(bobCurve, parseCurve(t, otks["AAAAAQ"]))
		libAlice.name = "libolm alice"
		pre, _ := preKeyMessages(t, libAlice, 1)
		libBob, _ := bob.inbound(pre[0], true)
		libBob.name = "libolm bob"
		converse(t, libAlice, libBob, 4)

		// Bob skips two messages; their keys move into xolm with him.
		late := []string{"late 0", "late 1", "late 2"}
		msgs := make([]olmMessage, len(late))
		for i, text := range late {
			msgs[i] = libAlice.encrypt(text)
		}
		receive(t, libBob, msgs[2], late[2])
		xolmBob := &xolmSession{t: t, name: "xolm with libolm bob's session", s: importSession(t, l.pickle("session", libBob.h, key), key)}
		receive(t, xolmBob, msgs[0], late[0])
		receive(t, xolmBob, msgs[1], late[1])
		rejects(t, xolmBob, msgs[2], "a message libolm had decrypted")
		converse(t, libAlice, xolmBob, 4)

		xolmAlice := &xolmSession{t: t, name: "xolm with libolm alice's session", s: importSession(t, l.pickle("session", libAlice.h, key), key)}
		converse(t, xolmAlice, xolmBob, 4)

		// A session that has not had a reply still sends pre-key messages.
		carol := l.newAccount()
		libCarol := carol.outbound(bobCurve, parseCurve(t, otks["AAAAAg"]))
		libCarol.name = "libolm carol"
		first, firstTexts := preKeyMessages(t, libCarol, 1)
		xolmCarol := &xolmSession{t: t, name: "xolm with libolm carol's session", s: importSession(t, l.pickle("session", libCarol.h, key), key)}
		pre, texts := preKeyMessages(t, xolmCarol, 1)
		fromCarol, got := bob.inbound(pre[0], true)
		fromCarol.name = "libolm bob with carol"
		if got != texts[0] {
			t.Fatalf("libolm decrypted %q, want %q", got, texts[0])
		}
		receive(t, fromCarol, first[0], firstTexts[0])
		converse(t, xolmCarol, fromCarol, 4)
	})

	t.Run("megolm", func(t *testing.T) {
		libOut := libolmGroups{l}.newOutbound().(libolmOutGroup)
		key0 := libOut.sessionKey()
		libIn, err := libolmGroups{l}.newInbound(key0)
		if err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for i := range 3 {
			bodies = append(bodies, libOut.encrypt(groupText(i)))
			decryptsAt(t, libIn, bodies, i)
		}

		out, err := megolm.ImportLibolmOutboundGroupSession(l.pickle("outbound_group", libOut.h, key), key)
		if err != nil {
			t.Fatal(err)
		}
		if again := out.LibolmPickle(key); again != l.pickle("outbound_group", libOut.h, key) {
			t.Fatalf("xolm pickles libolm's outbound session differently: %s", again)
		}
		if out.MessageIndex() != 3 || out.ID() != libOut.id() || b64.Encode(out.SessionKey()) != libOut.sessionKey() {
			t.Fatalf("xolm's copy of libolm's outbound session: index %d, id %s", out.MessageIndex(), out.ID())
		}
		bodies = append(bodies, xolmOutGroup{t: t, s: out}.encrypt(groupText(3)))
		decryptsAt(t, libIn, bodies, 3)

		// An inbound session that has decrypted, and an imported one that
		// has not (and so is not verified yet).
		exported, err := libIn.export(1)
		if err != nil {
			t.Fatal(err)
		}
		imported, err := libolmGroups{l}.importInbound(exported)
		if err != nil {
			t.Fatal(err)
		}
		for n, lib := range []libolmInGroup{libIn.(libolmInGroup), imported.(libolmInGroup)} {
			pickle := l.pickle("inbound_group", lib.h, key)
			s, err := megolm.ImportLibolmInboundGroupSession(pickle, key)
			if err != nil {
				t.Fatal(err)
			}
			if again := s.LibolmPickle(key); again != pickle {
				t.Fatalf("xolm pickles libolm's inbound session differently:\nxolm   %s\nlibolm %s", again, pickle)
			}
			if s.FirstKnownIndex() != lib.firstKnownIndex() || s.ID() != lib.id() || s.SigningKeyVerified() != (n == 0) {
				t.Fatalf("xolm's copy of libolm's inbound session: first known index %d, id %s, verified %v",
					s.FirstKnownIndex(), s.ID(), s.SigningKeyVerified())
			}
			in := xolmInGroup{t: t, s: s}
			if first := s.FirstKnownIndex(); first > 0 {
				failsAtUnknownIndex(t, in, bodies, int(first)-1)
			}
			for i := int(s.FirstKnownIndex()); i < len(bodies); i++ {
				decryptsAt(t, in, bodies, i)
			}
		}
	})
}

func importAccount(t *testing.T, pickle string, key []byte) *olm.Account {
	t.Helper()
	acc, err := olm.ImportLibolmAccount(pickle, key)
	if err != nil {
		t.Fatal(err)
	}
	if again := acc.LibolmPickle(key); again != pickle {
		t.Fatalf("xolm pickles libolm's account differently:\nxolm   %s\nlibolm %s", again, pickle)
	}
	return acc
}

func importSession(t *testing.T, pickle string, key []byte) *olm.Session {
	t.Helper()
	s, err := olm.ImportLibolmSession(pickle, key)
	if err != nil {
		t.Fatal(err)
	}
	if again := s.LibolmPickle(key); again != pickle {
		t.Fatalf("xolm pickles libolm's session differently:\nxolm   %s\nlibolm %s", again, pickle)
	}
	return s
}
