package olm

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/libolmpickle"
)

// libolm 3.2 tests/test_olm.cpp "Old account (v3) unpickle test".
func TestImportLibolmAccountV3Vector(t *testing.T) {
	v := readVectors(t, "testdata/libolm_pickles.txt")
	a, err := ImportLibolmAccount(v["account_v3"], nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(a.FallbackKeyJSON()); got != v["account_v3_fallback"] {
		t.Errorf("fallback %s", got)
	}
	if got := string(a.UnpublishedFallbackKeyJSON()); got != v["account_v3_unpublished_fallback"] {
		t.Errorf("unpublished fallback %s", got)
	}
	// The next key continues the counter.
	if err := a.GenerateOneTimeKeys(testRand(1), 1); err != nil || a.OneTimeKeys()[0].ID <= 1 {
		t.Fatal("counter", err)
	}
}

// libolm 3.2 tests/test_olm.cpp "Old account unpickle test": version 1 is
// refused.
func TestImportLibolmAccountV1Vector(t *testing.T) {
	v := readVectors(t, "testdata/libolm_pickles.txt")
	a, err := ImportLibolmAccount(v["account_v1"], nil)
	var ve *PickleVersionError
	if a != nil || !errors.As(err, &ve) || ve.Version != 1 || ve.Format != "libolm" || ve.Object != "account" {
		t.Fatalf("got %v, %v", a, err)
	}
}

// An imported libolm account (the transcript's Bob, made by libolm) accepts a
// session on its fallback key and signs like the original.
func TestImportLibolmAccountFromLibolm(t *testing.T) {
	v := readVectors(t, "testdata/libolm_loopback.txt")
	bob, err := ImportLibolmAccount(v["b_account_pickle"], []byte("secret_key"))
	if err != nil {
		t.Fatal(err)
	}
	if string(bob.IdentityKeysJSON()) != v["b_identity"] {
		t.Fatal("identity keys differ")
	}
	fk, ok := bob.UnpublishedFallbackKey()
	if !ok || string(bob.UnpublishedFallbackKeyJSON()) != v["b_fallback"] {
		t.Fatal("fallback key")
	}
	if len(bob.OneTimeKeys()) != 41 || bob.lastKeyID != 43 {
		t.Fatalf("%d keys, counter %d", len(bob.OneTimeKeys()), bob.lastKeyID)
	}
	alice := newAccount(t, 5, 0)
	_, msg := preKeyTo(t, alice, bob, fk.Key, "to an imported account")
	if _, pt, err := bob.NewInboundSession(nil, msg); err != nil || string(pt) != "to an imported account" {
		t.Fatal(pt, err)
	}
	// Bob, rebuilt from the same bytes, signs the same.
	orig, _ := NewAccount(&mockRandom{tag: 'B', current: 0x80})
	if !bytes.Equal(orig.Sign([]byte("x")), bob.Sign([]byte("x"))) {
		t.Fatal("imported expanded key signs differently")
	}
}

func TestLibolmAccountRoundTrip(t *testing.T) {
	a := fullAccount(t)
	p := a.LibolmPickle([]byte("key"))
	b, err := ImportLibolmAccount(p, []byte("key"))
	if err != nil {
		t.Fatal(err)
	}
	sameAccountBehaviour(t, a, b)
	if b.LibolmPickle([]byte("key")) != p {
		t.Fatal("export of the import differs")
	}
	if _, err := ImportLibolmAccount(p, []byte("other")); !errors.Is(err, ErrPickleAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := ImportLibolmAccount("not base64!", nil); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("garbage: %v", err)
	}
}

// The exported Ed25519 key is libolm's expanded form with the scalar clamped;
// libolm signs invalidly from an unclamped one.
func TestLibolmAccountEd25519Clamped(t *testing.T) {
	a := newAccount(t, 1, 0)
	raw, err := libolmpickle.Open(nil, a.LibolmPickle(nil))
	if err != nil {
		t.Fatal(err)
	}
	exp := raw[4+32 : 4+32+64]
	seed, _ := a.signing.Seed()
	want := sha512.Sum512(seed[:])
	want[0] &= 248
	want[31] &= 63
	want[31] |= 64
	if !bytes.Equal(exp, want[:]) {
		t.Fatal("expanded key is not clamped SHA-512(seed)")
	}
}

func TestImportLibolmAccountOlderVersions(t *testing.T) {
	a := newAccount(t, 1, 3)
	r := testRand(2)
	a.GenerateFallbackKey(r)
	a.GenerateFallbackKey(r)
	fb, prev := a.fallback, a.prevFallback

	t.Run("v2 has no fallback keys", func(t *testing.T) {
		b := importRaw(t, encodeLibolmAccount(a, 2, nil))
		if b.fallback != nil || b.prevFallback != nil || !bytes.Equal(a.OneTimeKeysJSON(), b.OneTimeKeysJSON()) {
			t.Fatal("v2 import")
		}
	})
	// v3 always stores two fallback structures; published flags say which
	// exist, and those are taken as published.
	for _, c := range []struct {
		curPub, prevPub bool
		want            int
	}{{false, true, 0}, {true, false, 1}, {true, true, 2}} {
		b := importRaw(t, encodeLibolmAccount(a, 3, func(e *libolmpickle.Encoder) {
			encodeLocalKey(e, &localKey{id: fb.id, published: c.curPub, key: fb.key})
			encodeLocalKey(e, &localKey{id: prev.id, published: c.prevPub, key: prev.key})
		}))
		got := 0
		if b.fallback != nil {
			got++
			if !b.fallback.published || b.fallback.id != fb.id {
				t.Error("v3 current fallback key")
			}
		}
		if b.prevFallback != nil {
			got++
		}
		if got != c.want {
			t.Errorf("v3 %t/%t: %d fallback keys, want %d", c.curPub, c.prevPub, got, c.want)
		}
	}
	t.Run("v4 with three fallback keys", func(t *testing.T) {
		raw := encodeLibolmAccount(a, 4, func(e *libolmpickle.Encoder) { e.U8(3) })
		if _, err := ImportLibolmAccount(libolmpickle.Seal(nil, raw), nil); !errors.Is(err, ErrPickleFormat) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		_, err := ImportLibolmAccount(libolmpickle.Seal(nil, encodeLibolmAccount(a, 5, nil)), nil)
		var ve *PickleVersionError
		if !errors.As(err, &ve) || ve.Version != 5 {
			t.Fatalf("err = %v", err)
		}
	})
}

// vodozemac writes one-time keys oldest first; they are read back newest
// first, and a counter behind the IDs is raised so that no ID is reused.
func TestImportLibolmAccountOrderAndCounter(t *testing.T) {
	a := newAccount(t, 1, 4)
	a.oneTimeKeys[0], a.oneTimeKeys[3] = a.oneTimeKeys[3], a.oneTimeKeys[0]
	a.oneTimeKeys[1], a.oneTimeKeys[2] = a.oneTimeKeys[2], a.oneTimeKeys[1]
	a.lastKeyID = 2
	b := importRaw(t, encodeLibolmAccount(a, 4, func(e *libolmpickle.Encoder) { e.U8(0) }))
	ks := b.OneTimeKeys()
	for i, k := range ks {
		if k.ID != KeyID(4-i) {
			t.Fatalf("order %v", ks)
		}
	}
	if b.lastKeyID != 4 {
		t.Fatalf("counter %d", b.lastKeyID)
	}
}

func importRaw(t *testing.T, raw []byte) *Account {
	t.Helper()
	a, err := ImportLibolmAccount(libolmpickle.Seal([]byte("k"), raw), []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// checkLibolmVectorSession checks the keys libolm's tests/test_session.cpp
// expects in its session pickle.
func checkLibolmVectorSession(t *testing.T, s *Session, v map[string]string) {
	t.Helper()
	hexOf := func(b [32]byte) string { return hex.EncodeToString(b[:]) }
	r := &s.ratchet
	if r.sender == nil || len(r.receivers) != 0 || len(r.skipped) != 0 || s.receivedMessage || r.sender.chain.index != 0 {
		t.Fatal("session shape")
	}
	for name, got := range map[string][32]byte{
		"session_root_key":               r.root,
		"session_sender_ratchet_public":  r.sender.ratchetKey.PublicKey().Array(),
		"session_sender_ratchet_private": r.sender.ratchetKey.PrivateArray(),
		"session_alice_identity_key":     s.aliceIdentity.Array(),
		"session_alice_base_key":         s.aliceBase.Array(),
		"session_bob_one_time_key":       s.bobOneTime.Array(),
	} {
		if hexOf(got) != v[name] {
			t.Errorf("%s = %s", name, hexOf(got))
		}
	}
}

func TestImportLibolmSessionVectors(t *testing.T) {
	v := readVectors(t, "testdata/libolm_pickles.txt")
	key := []byte("secret_key")
	s, err := ImportLibolmSession(v["session_v1"], key)
	if err != nil {
		t.Fatal(err)
	}
	checkLibolmVectorSession(t, s, v)

	// The early "version 2" pickle is refused, as libolm 3.2 refuses it...
	_, err = ImportLibolmSession(v["session_v2"], key)
	var ve *PickleVersionError
	if !errors.As(err, &ve) || ve.Version != 2 || ve.Object != "session" {
		t.Fatalf("err = %v", err)
	}
	// ...but its layout is that of 0x80000001, which is read.
	raw, err := libolmpickle.Open(key, v["session_v2"])
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(raw, 0x80000001)
	s, err = ImportLibolmSession(libolmpickle.Seal(key, raw), key)
	if err != nil {
		t.Fatal(err)
	}
	checkLibolmVectorSession(t, s, v)
	// Without the trailing field it is not.
	binary.BigEndian.PutUint32(raw, 1)
	if _, err := ImportLibolmSession(libolmpickle.Seal(key, raw), key); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("err = %v", err)
	}
}

// libolm's own sessions, exported mid-conversation, continue in xolm.
func TestImportLibolmSessionFromLibolm(t *testing.T) {
	v := readVectors(t, "testdata/libolm_loopback.txt")
	bob, err := ImportLibolmSession(v["b_session_pickle"], nil)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := ImportLibolmSession(v["a_session_pickle"], []byte("secret_key"))
	if err != nil {
		t.Fatal(err)
	}
	if bob.ID() != v["session_id"] || alice.ID() != v["session_id"] {
		t.Fatal("session ids")
	}
	// libolm's Bob never read m3.
	mustDecrypt(t, bob, MessageTypeNormal, unb64(t, v["m3_body"]), "third")
	for range 3 {
		encryptAndDeliver(t, bob, alice)
		encryptAndDeliver(t, alice, bob)
	}
}

func TestLibolmSessionRoundTrip(t *testing.T) {
	alice, bob := newSessionPair(t)
	for range 2 {
		encryptAndDeliver(t, bob, alice)
		encryptAndDeliver(t, alice, bob)
	}
	ms := sendN(t, bob, "m", 3)
	ms[2].decrypt(t, alice)
	for _, s := range []*Session{alice, bob} {
		p := s.LibolmPickle([]byte("k"))
		u, err := ImportLibolmSession(p, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		if string(sessionState(u)) != string(sessionState(s)) || u.LibolmPickle([]byte("k")) != p {
			t.Fatal("round trip differs")
		}
	}
	if _, err := ImportLibolmSession(alice.LibolmPickle(nil), []byte("k")); !errors.Is(err, ErrPickleAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	_, err := ImportLibolmSession(libolmpickle.Seal(nil, []byte{0, 0, 0, 3}), nil)
	var ve *PickleVersionError
	if !errors.As(err, &ve) || ve.Version != 3 {
		t.Fatalf("err = %v", err)
	}
	// libolm never holds two sending chains.
	var e libolmpickle.Encoder
	e.U32(1)
	e.Bool(true)
	e.Bytes(make([]byte, 4*32))
	e.U32(2)
	if _, err := ImportLibolmSession(libolmpickle.Seal(nil, e.Result()), nil); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzImportLibolmPickles decodes arbitrary authenticated pickle contents as
// an account and as a session: no input may panic, and a failure returns
// nothing.
func FuzzImportLibolmPickles(f *testing.F) {
	alice, bob := newSessionPair(f)
	for _, s := range []*Session{alice, bob} {
		raw, _ := libolmpickle.Open(nil, s.LibolmPickle(nil))
		f.Add(raw)
	}
	a := newAccount(f, 1, 2)
	a.GenerateFallbackKey(testRand(2))
	raw, _ := libolmpickle.Open(nil, a.LibolmPickle(nil))
	f.Add(raw)
	f.Add(encodeLibolmAccount(a, 3, nil))
	f.Add([]byte{0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := libolmpickle.Seal(nil, raw)
		if s, err := ImportLibolmSession(p, nil); (s == nil) == (err == nil) {
			t.Fatalf("session %v, error %v", s, err)
		} else if s != nil {
			if _, err := ImportLibolmSession(s.LibolmPickle(nil), nil); err != nil {
				t.Fatalf("re-import: %v", err)
			}
		}
		if a, err := ImportLibolmAccount(p, nil); (a == nil) == (err == nil) {
			t.Fatalf("account %v, error %v", a, err)
		}
	})
}
