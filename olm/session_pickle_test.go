package olm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/libolmpickle"
	"github.com/xolm/xolm/internal/pickle"
)

func TestSessionPickleRoundTrip(t *testing.T) {
	alice, bob := newSessionPair(t)
	checkSize := func(s *Session) {
		t.Helper()
		if got, want := s.encodedSize(), len(sessionState(s)); got != want {
			t.Errorf("encodedSize = %d, the encoding has %d bytes", got, want)
		}
	}
	checkSize(alice)
	checkSize(bob)
	// Give both sides every kind of state: several chains and skipped keys.
	for range 3 {
		encryptAndDeliver(t, bob, alice)
		encryptAndDeliver(t, alice, bob)
	}
	ms := sendN(t, alice, "m", 4)
	ms[3].decrypt(t, bob)

	for _, s := range []*Session{alice, bob} {
		checkSize(s)
		p := s.Pickle(testPickleKey, testAD)
		u, err := UnpickleSession(p, testPickleKey, testAD)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sessionState(s), sessionState(u)) || u.ID() != s.ID() || u.HasReceivedMessage() != s.HasReceivedMessage() {
			t.Fatal("state differs after a round trip")
		}
	}
	bob2, err := UnpickleSession(bob.Pickle(testPickleKey, testAD), testPickleKey, testAD)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:3] {
		m.decrypt(t, bob2)
	}
	encryptAndDeliver(t, bob2, alice)
	encryptAndDeliver(t, alice, bob2)
}

func TestSessionPickleErrors(t *testing.T) {
	s, _ := newSessionPair(t)
	p := s.Pickle(testPickleKey, testAD)
	raw := func(version uint32, edit func(e *libolmpickle.Encoder)) []byte {
		var e libolmpickle.Encoder
		e.U32(version)
		edit(&e)
		return seal(pickle.KindSession, e.Result())
	}
	noChains := raw(sessionFormatVersion, func(e *libolmpickle.Encoder) {
		e.Bool(false)
		e.Bytes(make([]byte, 4*32))
		e.U32(0)
		e.U32(0)
		e.U32(0)
	})
	tooManyChains := raw(sessionFormatVersion, func(e *libolmpickle.Encoder) {
		e.Bool(true)
		e.Bytes(make([]byte, 4*32))
		e.U32(0)
		e.U32(MaxReceiverChains + 1)
	})
	for name, c := range map[string]struct {
		blob []byte
		key  *[32]byte
		want error
	}{
		"wrong key":       {p, &[32]byte{}, ErrPickleAuth},
		"an account":      {newAccount(t, 1, 0).Pickle(testPickleKey, testAD), testPickleKey, ErrPickleAuth},
		"flipped bit":     {flip(p, 30), testPickleKey, ErrPickleAuth},
		"truncated":       {seal(pickle.KindSession, append([]byte{0, 0, 0, sessionFormatVersion}, sessionState(s)...)[:60]), testPickleKey, ErrPickleFormat},
		"no chains":       {noChains, testPickleKey, ErrPickleFormat},
		"too many chains": {tooManyChains, testPickleKey, ErrPickleFormat},
	} {
		t.Run(name, func(t *testing.T) {
			u, err := UnpickleSession(c.blob, c.key, testAD)
			if u != nil || !errors.Is(err, c.want) {
				t.Fatalf("got %v, %v; want %v", u, err, c.want)
			}
		})
	}
	_, err := UnpickleSession(raw(7, func(e *libolmpickle.Encoder) { s.encode(e) }), testPickleKey, testAD)
	var ve *PickleVersionError
	if !errors.As(err, &ve) || ve.Version != 7 || ve.Object != "session" {
		t.Fatalf("err = %v", err)
	}
}
