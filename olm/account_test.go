package olm

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestNewAccountReadsSeedThenCurveKey(t *testing.T) {
	var b [64]byte
	for i := range b {
		b[i] = byte(i)
	}
	a, err := NewAccount(bytes.NewReader(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	std := ed25519.NewKeyFromSeed(b[:32])
	if !bytes.Equal(a.IdentityKeys().Ed25519.Bytes(), std[32:]) {
		t.Error("ed25519 key is not from bytes 0-31")
	}
	if priv := a.identity.PrivateArray(); !bytes.Equal(priv[:], b[32:]) {
		t.Error("curve25519 key is not bytes 32-63")
	}
	if _, err := NewAccount(bytes.NewReader(b[:63])); err == nil {
		t.Error("63 bytes accepted")
	}
}

func TestIdentityKeysJSON(t *testing.T) {
	a := newAccount(t, 1, 0)
	ik := a.IdentityKeys()
	want := `{"curve25519":"` + ik.Curve25519.String() + `","ed25519":"` + ik.Ed25519.String() + `"}`
	if got := string(a.IdentityKeysJSON()); got != want {
		t.Fatalf("got %s", got)
	}
	var parsed map[string]string
	if err := json.Unmarshal(a.IdentityKeysJSON(), &parsed); err != nil || len(parsed) != 2 {
		t.Fatal(err)
	}
	c, err := ParseCurve25519PublicKey(parsed["curve25519"])
	if err != nil || c != ik.Curve25519 {
		t.Fatal("curve25519 key does not parse back")
	}
	e, err := ParseEd25519PublicKey(parsed["ed25519"])
	if err != nil || e != ik.Ed25519 {
		t.Fatal("ed25519 key does not parse back")
	}
}

func TestSign(t *testing.T) {
	a := newAccount(t, 1, 0)
	msg := []byte(`{"one":1}`)
	sig := a.Sign(msg)
	if len(sig) != 64 || !a.IdentityKeys().Ed25519.Verify(msg, sig) || a.IdentityKeys().Ed25519.Verify([]byte("other"), sig) {
		t.Fatal("signature does not verify")
	}
	if !ed25519.Verify(a.IdentityKeys().Ed25519.Bytes(), msg, sig) {
		t.Fatal("not a standard Ed25519 signature")
	}
}

// Invariant 14: secrets never print.
func TestAccountRedaction(t *testing.T) {
	a := newAccount(t, 1, 1)
	ik := a.IdentityKeys()
	want := "olm.Account{curve25519:" + ik.Curve25519.String() + ", ed25519:" + ik.Ed25519.String() + ", secrets:redacted}"
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("a", "account", a)
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log: %s", logs.String())
	}
	priv := a.identity.PrivateArray()
	otk := a.oneTimeKeys[0].key.PrivateArray()
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		got := fmt.Sprintf(f, a)
		if got != want {
			t.Errorf("%s: %s", f, got)
		}
		for _, secret := range [][]byte{priv[:], otk[:]} {
			if strings.Contains(got, enc64(secret)) || strings.Contains(got, fmt.Sprintf("%x", secret)) {
				t.Errorf("%s prints a secret", f)
			}
		}
	}
}
