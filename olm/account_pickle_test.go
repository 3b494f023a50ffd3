package olm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/libolmpickle"
	"github.com/xolm/xolm/internal/pickle"
)

var (
	testPickleKey = &[32]byte{1, 2, 3}
	testAD        = []byte("accounts/@alice:example.org/v1")
)

// sameAccountBehaviour checks that two accounts are interchangeable: same
// keys, same signatures, same JSON, same counter.
func sameAccountBehaviour(t *testing.T, a, b *Account) {
	t.Helper()
	if !bytes.Equal(a.IdentityKeysJSON(), b.IdentityKeysJSON()) ||
		!bytes.Equal(a.OneTimeKeysJSON(), b.OneTimeKeysJSON()) ||
		!bytes.Equal(a.FallbackKeyJSON(), b.FallbackKeyJSON()) ||
		!bytes.Equal(a.UnpublishedFallbackKeyJSON(), b.UnpublishedFallbackKeyJSON()) {
		t.Fatal("keys differ")
	}
	if !bytes.Equal(a.Sign([]byte("m")), b.Sign([]byte("m"))) {
		t.Fatal("signatures differ")
	}
	if a.lastKeyID != b.lastKeyID || len(a.oneTimeKeys) != len(b.oneTimeKeys) {
		t.Fatal("counters differ")
	}
}

func fullAccount(t *testing.T) *Account {
	a := newAccount(t, 1, 5)
	r := testRand(2)
	a.MarkKeysAsPublished()
	a.GenerateOneTimeKeys(r, 3)
	a.GenerateFallbackKey(r)
	a.GenerateFallbackKey(r)
	return a
}

func TestAccountPickleRoundTrip(t *testing.T) {
	a := fullAccount(t)
	p := a.Pickle(testPickleKey, testAD)
	b, err := UnpickleAccount(p, testPickleKey, testAD)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(accountState(a), accountState(b)) {
		t.Fatal("state differs after a round trip")
	}
	sameAccountBehaviour(t, a, b)
	if _, ok := b.signing.Seed(); !ok {
		t.Fatal("seed lost")
	}
	// An imported libolm account has no seed; its expanded key round-trips.
	c, err := ImportLibolmAccount(a.LibolmPickle(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := UnpickleAccount(c.Pickle(testPickleKey, nil), testPickleKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.signing.Seed(); ok || !bytes.Equal(accountState(c), accountState(d)) {
		t.Fatal("expanded-key account does not round-trip")
	}
	sameAccountBehaviour(t, a, d)
}

func TestAccountPickleErrors(t *testing.T) {
	a := newAccount(t, 1, 1)
	p := a.Pickle(testPickleKey, testAD)
	other := &[32]byte{9}
	for name, c := range map[string]struct {
		blob []byte
		key  *[32]byte
		ad   []byte
		want error
	}{
		"wrong key":     {p, other, testAD, ErrPickleAuth},
		"wrong ad":      {p, testPickleKey, []byte("accounts/@bob:example.org/v1"), ErrPickleAuth},
		"flipped bit":   {flip(p, len(p)-20), testPickleKey, testAD, ErrPickleAuth},
		"a session":     {sessionPickle(t), testPickleKey, testAD, ErrPickleAuth},
		"too short":     {p[:10], testPickleKey, testAD, ErrPickleFormat},
		"empty":         {nil, testPickleKey, testAD, ErrPickleFormat},
		"truncated raw": {seal(pickle.KindAccount, a.encode()[:100]), testPickleKey, testAD, ErrPickleFormat},
		"trailing data": {seal(pickle.KindAccount, append(a.encode(), 0)), testPickleKey, testAD, ErrPickleFormat},
		"no version":    {seal(pickle.KindAccount, []byte{0, 1}), testPickleKey, testAD, ErrPickleFormat},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := UnpickleAccount(c.blob, c.key, c.ad)
			if b != nil || !errors.Is(err, c.want) {
				t.Fatalf("got %v, %v; want %v", b, err, c.want)
			}
		})
	}
	raw := a.encode()
	raw[3] = 2
	_, err := UnpickleAccount(seal(pickle.KindAccount, raw), testPickleKey, testAD)
	var ve *PickleVersionError
	if !errors.As(err, &ve) || ve.Version != 2 || ve.Object != "account" || ve.Format != "xolm" {
		t.Fatalf("err = %v", err)
	}
}

// Counters only grow: xolm's own pickle never holds a key above its counter.
func TestAccountPickleRejectsKeyAboveCounter(t *testing.T) {
	a := newAccount(t, 1, 2)
	a.lastKeyID = 1
	if _, err := UnpickleAccount(seal(pickle.KindAccount, a.encode()), testPickleKey, testAD); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("err = %v", err)
	}
}

func seal(kind pickle.Kind, raw []byte) []byte { return pickle.Seal(testPickleKey, kind, testAD, raw) }

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

func sessionPickle(t *testing.T) []byte {
	s, _ := newSessionPair(t)
	return s.Pickle(testPickleKey, testAD)
}

// encodeLibolmAccount builds a raw libolm account pickle of an older version
// from an account, for the import tests.
func encodeLibolmAccount(a *Account, version uint32, fallback func(e *libolmpickle.Encoder)) []byte {
	var e libolmpickle.Encoder
	e.U32(version)
	encodeExpandedEd25519(&e, a.signing)
	encodeCurvePair(&e, a.identity)
	e.U32(uint32(len(a.oneTimeKeys)))
	for _, k := range a.oneTimeKeys {
		encodeLocalKey(&e, k)
	}
	if fallback != nil {
		fallback(&e)
	}
	e.U32(a.lastKeyID)
	return e.Result()
}
