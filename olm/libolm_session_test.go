package olm

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/libolmpickle"
)

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
