package pickle

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTripAndBinding(t *testing.T) {
	key := &[KeySize]byte{1, 2, 3}
	pt := []byte("state bytes")
	s := Seal(key, KindSession, []byte("olm_sessions/abc/v1"), pt)
	got, err := Open(key, KindSession, []byte("olm_sessions/abc/v1"), s)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %v", err)
	}
	if s2 := Seal(key, KindSession, []byte("olm_sessions/abc/v1"), pt); bytes.Equal(s, s2) {
		t.Fatal("nonce reused")
	}
	for name, try := range map[string]func() ([]byte, error){
		"other ad":   func() ([]byte, error) { return Open(key, KindSession, []byte("olm_sessions/abd/v1"), s) },
		"other kind": func() ([]byte, error) { return Open(key, KindAccount, []byte("olm_sessions/abc/v1"), s) },
		"other key":  func() ([]byte, error) { return Open(&[KeySize]byte{9}, KindSession, []byte("olm_sessions/abc/v1"), s) },
	} {
		if _, err := try(); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	for i := range s {
		c := bytes.Clone(s)
		c[i] ^= 0x10
		if _, err := Open(key, KindSession, []byte("olm_sessions/abc/v1"), c); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	for n := 0; n < len(s); n++ {
		if _, err := Open(key, KindSession, []byte("olm_sessions/abc/v1"), s[:n]); err == nil {
			t.Fatalf("truncation to %d accepted", n)
		}
	}
	if _, err := Open(key, KindSession, nil, make([]byte, MaxSize+1)); !errors.Is(err, ErrFormat) {
		t.Fatalf("oversize: %v", err)
	}
}
