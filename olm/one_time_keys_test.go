package olm

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestKeyIDString(t *testing.T) {
	for id, want := range map[KeyID]string{1: "AAAAAQ", 2: "AAAAAg", 3: "AAAAAw", 43: "AAAAKw", math.MaxUint32: "/////w"} {
		if got := id.String(); got != want {
			t.Errorf("KeyID(%d) = %s, want %s", id, got, want)
		}
	}
}

func TestOneTimeKeysNewestFirst(t *testing.T) {
	a := newAccount(t, 1, 3)
	ks := a.OneTimeKeys()
	if len(ks) != 3 || ks[0].ID != 3 || ks[1].ID != 2 || ks[2].ID != 1 {
		t.Fatalf("keys %v", ks)
	}
	want := fmt.Sprintf(`{"curve25519":{"AAAAAw":"%s","AAAAAg":"%s","AAAAAQ":"%s"}}`, ks[0].Key, ks[1].Key, ks[2].Key)
	if got := string(a.OneTimeKeysJSON()); got != want {
		t.Errorf("JSON %s", got)
	}
	if a.MaxNumberOfOneTimeKeys() != 100 {
		t.Error("max")
	}
}

func TestOneTimeKeysPublished(t *testing.T) {
	a := newAccount(t, 1, 2)
	a.MarkKeysAsPublished()
	if len(a.OneTimeKeys()) != 0 || string(a.OneTimeKeysJSON()) != `{"curve25519":{}}` {
		t.Fatalf("published keys listed: %s", a.OneTimeKeysJSON())
	}
	if err := a.GenerateOneTimeKeys(testRand(2), 1); err != nil {
		t.Fatal(err)
	}
	if ks := a.OneTimeKeys(); len(ks) != 1 || ks[0].ID != 3 {
		t.Fatalf("unpublished %v", ks)
	}
}

// At most MaxOneTimeKeys are held; the oldest go first, and IDs keep
// counting.
func TestOneTimeKeysCapacity(t *testing.T) {
	a := newAccount(t, 1, 60)
	if err := a.GenerateOneTimeKeys(testRand(2), 60); err != nil {
		t.Fatal(err)
	}
	ks := a.OneTimeKeys()
	if len(ks) != MaxOneTimeKeys || ks[0].ID != 120 || ks[len(ks)-1].ID != 21 {
		t.Fatalf("%d keys, ids %d..%d", len(ks), ks[0].ID, ks[len(ks)-1].ID)
	}
	for _, n := range []int{-1, MaxOneTimeKeys + 1} {
		if err := a.GenerateOneTimeKeys(testRand(3), n); err == nil {
			t.Errorf("generated %d keys", n)
		}
	}
	if err := a.GenerateOneTimeKeys(testRand(3), 0); err != nil || len(a.OneTimeKeys()) != MaxOneTimeKeys {
		t.Fatal("zero keys", err)
	}
}

func TestOneTimeKeysRandomness(t *testing.T) {
	a := newAccount(t, 1, 0)
	r := &countingRandom{}
	if err := a.GenerateOneTimeKeys(r, 5); err != nil || r.n != 5*32 {
		t.Fatalf("read %d bytes: %v", r.n, err)
	}
	if err := a.GenerateOneTimeKeys(strings.NewReader("short"), 1); err == nil {
		t.Fatal("short randomness accepted")
	}
	if len(a.OneTimeKeys()) != 5 || a.lastKeyID != 5 {
		t.Fatal("failed generation changed the account")
	}
	if err := a.GenerateFallbackKey(r); err != nil || r.n != 6*32 {
		t.Fatalf("fallback read %d bytes: %v", r.n-5*32, err)
	}
}

// Fallback keys share the one-time key counter (as libolm): after two
// one-time keys the fallback key is number 3.
func TestFallbackKeys(t *testing.T) {
	a := newAccount(t, 1, 2)
	if _, ok := a.FallbackKey(); ok {
		t.Fatal("fallback key before generation")
	}
	if got := string(a.FallbackKeyJSON()); got != `{"curve25519":{}}` {
		t.Fatal(got)
	}
	r := testRand(2)
	if err := a.GenerateFallbackKey(r); err != nil {
		t.Fatal(err)
	}
	fk, ok := a.UnpublishedFallbackKey()
	if !ok || fk.ID != 3 || fk.ID.String() != "AAAAAw" {
		t.Fatalf("fallback %v", fk)
	}
	want := `{"curve25519":{"AAAAAw":"` + fk.Key.String() + `"}}`
	if string(a.FallbackKeyJSON()) != want || string(a.UnpublishedFallbackKeyJSON()) != want {
		t.Fatalf("JSON %s %s", a.FallbackKeyJSON(), a.UnpublishedFallbackKeyJSON())
	}
	a.MarkKeysAsPublished()
	if _, ok := a.UnpublishedFallbackKey(); ok || string(a.UnpublishedFallbackKeyJSON()) != `{"curve25519":{}}` {
		t.Fatal("published fallback key still unpublished")
	}
	if cur, ok := a.FallbackKey(); !ok || cur != fk || string(a.FallbackKeyJSON()) != want {
		t.Fatal("published fallback key lost")
	}
	// Rotation: current becomes previous; the older previous is dropped.
	for range 2 {
		if err := a.GenerateFallbackKey(r); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := a.UnpublishedFallbackKey()
	if cur.ID != 5 || a.prevFallback.id != 4 {
		t.Fatalf("current %d, previous %d", cur.ID, a.prevFallback.id)
	}
	if k, _ := a.findKey(fk.Key); k != nil {
		t.Fatal("dropped fallback key still found")
	}
	a.ForgetOldFallbackKey()
	if a.prevFallback != nil {
		t.Fatal("previous fallback key not forgotten")
	}
	a.ForgetOldFallbackKey() // nothing to forget
	if _, ok := a.FallbackKey(); !ok {
		t.Fatal("current fallback key forgotten")
	}
	if err := a.GenerateOneTimeKeys(r, 1); err != nil || a.OneTimeKeys()[0].ID != 6 {
		t.Fatal("counter not shared", err)
	}
}

// Invariant 11: IDs are never reused, so the counter's end is an error.
func TestKeyIDsExhausted(t *testing.T) {
	a := newAccount(t, 1, 0)
	a.lastKeyID = math.MaxUint32 - 2
	if err := a.GenerateOneTimeKeys(testRand(2), 3); !errors.Is(err, ErrKeyIDsExhausted) {
		t.Fatalf("err = %v", err)
	}
	if err := a.GenerateOneTimeKeys(testRand(2), 2); err != nil || a.OneTimeKeys()[0].ID != math.MaxUint32 {
		t.Fatal(err)
	}
	if err := a.GenerateFallbackKey(testRand(2)); !errors.Is(err, ErrKeyIDsExhausted) {
		t.Fatalf("err = %v", err)
	}
}

// RemoveOneTimeKey drops exactly the named one-time key, the same key
// NewInboundSession would drop, and never a fallback key.
func TestRemoveOneTimeKey(t *testing.T) {
	a := newAccount(t, 1, 3)
	if err := a.GenerateFallbackKey(testRand(2)); err != nil {
		t.Fatal(err)
	}
	ks := a.OneTimeKeys()
	if !a.RemoveOneTimeKey(ks[1].Key) {
		t.Fatal("held key not removed")
	}
	if a.RemoveOneTimeKey(ks[1].Key) {
		t.Fatal("a removed key removed again")
	}
	if left := a.OneTimeKeys(); len(left) != 2 || left[0].ID != ks[0].ID || left[1].ID != ks[2].ID {
		t.Fatalf("left %v", left)
	}
	fb, _ := a.FallbackKey()
	if a.RemoveOneTimeKey(fb.Key) {
		t.Fatal("fallback key removed")
	}
	if _, ok := a.FallbackKey(); !ok {
		t.Fatal("fallback key gone")
	}
}
