package megolm

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Sessions print their ID and index, never their ratchets or private keys,
// through every formatting path: %v, %+v, %#v, %s, %x, %q and structured
// logs. The methods have value receivers so that a dereferenced session
// (fmt.Print(*s)) is redacted too; fmt would otherwise print its fields.

func (s OutboundGroupSession) String() string {
	if s.signingKey == nil {
		return "megolm.OutboundGroupSession{}"
	}
	return "megolm.OutboundGroupSession{id:" + s.ID() +
		", index:" + strconv.FormatUint(uint64(s.ratchet.counter), 10) + ", secrets:redacted}"
}

// GoString implements fmt.GoStringer with the redacted form.
func (s OutboundGroupSession) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb reaches the secrets.
func (s OutboundGroupSession) Format(f fmt.State, _ rune) { f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s OutboundGroupSession) LogValue() slog.Value {
	if s.signingKey == nil {
		return slog.GroupValue()
	}
	return slog.GroupValue(slog.String("id", s.ID()), slog.Uint64("index", uint64(s.ratchet.counter)))
}

func (s InboundGroupSession) String() string {
	return "megolm.InboundGroupSession{id:" + s.ID() +
		", first_known_index:" + strconv.FormatUint(uint64(s.initial.counter), 10) +
		", verified:" + strconv.FormatBool(s.verified) + ", secrets:redacted}"
}

// GoString implements fmt.GoStringer with the redacted form.
func (s InboundGroupSession) GoString() string { return s.String() }

// Format implements fmt.Formatter so that no verb reaches the secrets.
func (s InboundGroupSession) Format(f fmt.State, _ rune) { f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer.
func (s InboundGroupSession) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.ID()),
		slog.Uint64("first_known_index", uint64(s.initial.counter)),
		slog.Bool("verified", s.verified))
}

var (
	_ fmt.Formatter  = OutboundGroupSession{}
	_ fmt.GoStringer = OutboundGroupSession{}
	_ slog.LogValuer = OutboundGroupSession{}
	_ fmt.Formatter  = InboundGroupSession{}
	_ fmt.GoStringer = InboundGroupSession{}
	_ slog.LogValuer = InboundGroupSession{}
)
