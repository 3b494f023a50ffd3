package megolm

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestRedaction pins what sessions print through every formatting path, and
// checks that no secret byte leaks in any form.
func TestRedaction(t *testing.T) {
	out, in := newTestPair(t, 5)
	id := out.ID()
	wantOut := "megolm.OutboundGroupSession{id:" + id + ", index:5, secrets:redacted}"
	wantIn := "megolm.InboundGroupSession{id:" + id + ", first_known_index:5, verified:true, secrets:redacted}"

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		for _, c := range []struct {
			v    any
			want string
		}{{out, wantOut}, {*out, wantOut}, {in, wantIn}, {*in, wantIn}} {
			if got := fmt.Sprintf(verb, c.v); got != c.want {
				t.Errorf("%s of %T: %q, want %q", verb, c.v, got, c.want)
			}
		}
	}
	// Inside other values, too.
	if got := fmt.Sprintf("%+v", struct{ S *OutboundGroupSession }{out}); !strings.Contains(got, wantOut) {
		t.Errorf("nested: %s", got)
	}

	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("sessions", "out", out, "in", in)
	wantLog := "out.id=" + id + " out.index=5 in.id=" + id + " in.first_known_index=5 in.verified=true"
	if !strings.Contains(buf.String(), wantLog) {
		t.Errorf("log: %s\nwant it to contain %s", buf.String(), wantLog)
	}

	printed := fmt.Sprint(out, *out, in, *in) + buf.String()
	seed, _ := out.signingKey.Seed()
	for name, secret := range map[string][]byte{
		"ratchet": out.ratchet.data[:16], "inbound ratchet": in.initial.data[:16], "seed": seed[:16],
	} {
		for _, form := range []string{fmt.Sprintf("%x", secret), fmt.Sprintf("%X", secret), fmt.Sprint(secret[:4])} {
			if strings.Contains(printed, form) {
				t.Errorf("the %s leaks as %s", name, form)
			}
		}
	}
	if got := fmt.Sprint(OutboundGroupSession{}); got != "megolm.OutboundGroupSession{}" {
		t.Errorf("zero value: %s", got)
	}
}

func TestErrorStrings(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&UnknownMessageIndexError{FirstKnown: 4, Index: 2}, "megolm: unknown message index 2 (the first known index is 4)"},
		{&PickleVersionError{Format: "libolm", Version: 9}, "megolm: unsupported libolm pickle version 9"},
		{ErrBadMAC, "megolm: message authentication failed"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}
