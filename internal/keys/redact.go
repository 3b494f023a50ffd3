package keys

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// redacted is what every secret prints: its type and, where it has one, its
// public key — never secret bytes.
func redacted(typ, pub string) string {
	if pub == "" {
		return typ + "{redacted}"
	}
	return typ + "{public:" + pub + ", secret:redacted}"
}

func constantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// Each secret type prints the same redacted text through every formatting
// path: %v, %+v, %#v, %s, %x and structured logs.

func (k *Curve25519SecretKey) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb (%x included) reaches the bytes.
func (k *Curve25519SecretKey) Format(f fmt.State, _ rune) { f.Write([]byte(k.String())) }

// LogValue implements slog.LogValuer.
func (k *Curve25519SecretKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

func (k *Ed25519SecretKey) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb (%x included) reaches the bytes.
func (k *Ed25519SecretKey) Format(f fmt.State, _ rune) { f.Write([]byte(k.String())) }

// LogValue implements slog.LogValuer.
func (k *Ed25519SecretKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

var (
	_ fmt.Formatter  = (*Curve25519SecretKey)(nil)
	_ fmt.GoStringer = (*Curve25519SecretKey)(nil)
	_ slog.LogValuer = (*Curve25519SecretKey)(nil)
	_ fmt.Formatter  = (*Ed25519SecretKey)(nil)
	_ fmt.GoStringer = (*Ed25519SecretKey)(nil)
	_ slog.LogValuer = (*Ed25519SecretKey)(nil)
)
