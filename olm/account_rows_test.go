package olm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/pickle"
)

// An account split into a core pickle and one row per one-time key restores
// to the same account, and the split never reuses or invents a key ID.
func TestAccountRowsRoundTrip(t *testing.T) {
	a := newAccount(t, 40, 0)
	if err := a.GenerateOneTimeKeys(testRand(41), 5); err != nil {
		t.Fatal(err)
	}
	a.MarkKeysAsPublished()
	if err := a.GenerateOneTimeKeys(testRand(42), 2); err != nil {
		t.Fatal(err)
	}
	if err := a.GenerateFallbackKey(testRand(43)); err != nil {
		t.Fatal(err)
	}
	key := &[32]byte{7}
	core := a.PickleWithoutOneTimeKeys(key, []byte("account"))
	b, err := UnpickleAccount(core, key, []byte("account"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.AllOneTimeKeys()) != 0 {
		t.Fatal("core pickle carries one-time keys")
	}
	states := a.AllOneTimeKeys()
	// Restore in a scrambled order: the account keeps newest first.
	for _, i := range []int{3, 0, 6, 1, 5, 2, 4} {
		s := states[i]
		row, err := a.PickleOneTimeKey(s.ID, key, []byte("otk/"+s.ID.String()))
		if err != nil {
			t.Fatal(err)
		}
		if err := b.AddPickledOneTimeKey(row, s.Published, key, []byte("otk/"+s.ID.String())); err != nil {
			t.Fatal(err)
		}
		if err := b.AddPickledOneTimeKey(row, s.Published, key, []byte("otk/"+s.ID.String())); err == nil {
			t.Fatal("duplicate id accepted")
		}
		if err := b.AddPickledOneTimeKey(row, s.Published, key, []byte("otk/other")); !errors.Is(err, ErrPickleAuth) {
			t.Fatalf("row under other ad: %v", err)
		}
	}
	if !bytes.Equal(a.encode(), b.encode()) {
		t.Fatal("restored account differs")
	}
	if _, err := a.PickleOneTimeKey(999, key, nil); !errors.Is(err, ErrMissingOneTimeKey) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestAddPickledOneTimeKeyRefusesIDBeyondCounter(t *testing.T) {
	a := newAccount(t, 44, 1)
	key := &[32]byte{1}
	row, _ := a.PickleOneTimeKey(1, key, nil)
	fresh := newAccount(t, 45, 0) // counter 0: id 1 was never handed out here
	if err := fresh.AddPickledOneTimeKey(row, false, key, nil); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("err = %v", err)
	}
}

func TestAccountCloneIsIndependent(t *testing.T) {
	a := newAccount(t, 46, 2)
	a.GenerateFallbackKey(testRand(47))
	before := a.encode()
	c := a.Clone()
	c.MarkKeysAsPublished()
	c.GenerateOneTimeKeys(testRand(48), 1)
	c.ForgetOldFallbackKey()
	if !bytes.Equal(a.encode(), before) {
		t.Fatal("changing the clone changed the original")
	}
}

// A store verifies on a copy: using, dropping or forgetting keys in a clone
// (which erases them) must leave the original's keys intact.
func TestAccountCloneKeepsKeysOfTheOriginal(t *testing.T) {
	alice, bob := newAccount(t, 49, 0), newAccount(t, 50, 2)
	bob.GenerateFallbackKey(testRand(51))
	bob.GenerateFallbackKey(testRand(52))
	_, msg := preKeyTo(t, alice, bob, bob.OneTimeKeys()[0].Key, "hi")
	before := bob.encode()

	c := bob.Clone()
	if _, _, err := c.NewInboundSession(nil, msg); err != nil {
		t.Fatal(err)
	}
	c.ForgetOldFallbackKey()
	if err := c.GenerateOneTimeKeys(testRand(53), MaxOneTimeKeys); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bob.encode(), before) {
		t.Fatal("the clone's erasures reached the original")
	}
	if _, pt, err := bob.NewInboundSession(nil, msg); err != nil || string(pt) != "hi" {
		t.Fatal(pt, err)
	}
}

func TestAddPickledOneTimeKeyVersion(t *testing.T) {
	a := newAccount(t, 54, 0)
	key := &[32]byte{1}
	raw := []byte{0, 0, 0, 9, 0, 0, 0, 1}
	raw = append(raw, make([]byte, 64)...)
	err := a.AddPickledOneTimeKey(pickle.Seal(key, pickle.KindOneTimeKey, nil, raw), false, key, nil)
	var ve *PickleVersionError
	if !errors.As(err, &ve) || ve.Version != 9 {
		t.Fatalf("err = %v", err)
	}
}
