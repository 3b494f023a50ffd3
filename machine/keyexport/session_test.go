package keyexport

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/megolm"
)

// newSession returns a valid exported session for a fresh Megolm session,
// and the outbound session it belongs to.
func newSession(t testing.TB, room string) (ExportedSession, *megolm.OutboundGroupSession) {
	t.Helper()
	out, err := megolm.NewOutboundGroupSession(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	in, err := megolm.NewInboundGroupSession(out.SessionKey())
	if err != nil {
		t.Fatal(err)
	}
	sender, err := keys.GenerateCurve25519SecretKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := keys.GenerateEd25519SecretKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ExportedSession{
		Algorithm:         MegolmAlgorithm,
		RoomID:            room,
		SessionID:         in.ID(),
		SenderKey:         sender.PublicKey(),
		SenderClaimedKeys: SenderClaimedKeys{Ed25519: signer.PublicKey()},
		SessionKey:        in.ExportAtFirstKnownIndex(),
	}, out
}

func TestSessionsRoundTrip(t *testing.T) {
	a, _ := newSession(t, "!a:example.org")
	b, _ := newSession(t, "!b:example.org")
	b.SharedHistory = true
	b.ForwardingCurve25519KeyChain = []keys.Curve25519PublicKey{a.SenderKey, b.SenderKey}
	b.SenderClaimedKeys = SenderClaimedKeys{}

	data, err := MarshalSessions([]ExportedSession{a, b})
	if err != nil {
		t.Fatal(err)
	}
	var wire []map[string]any
	if err := json.Unmarshal(data, &wire); err != nil {
		t.Fatal(err)
	}
	// The spec's field names; the chain and claimed keys always present; the
	// shared-history flag only when set, under the name clients read.
	want0 := map[string]any{
		"algorithm": MegolmAlgorithm, "room_id": "!a:example.org", "session_id": a.SessionID,
		"sender_key": a.SenderKey.String(), "session_key": string(mustText(t, a.SessionKey)),
		"sender_claimed_keys":             map[string]any{"ed25519": a.SenderClaimedKeys.Ed25519.String()},
		"forwarding_curve25519_key_chain": []any{},
	}
	if !reflect.DeepEqual(wire[0], want0) {
		t.Fatalf("wire form\n got %v\nwant %v", wire[0], want0)
	}
	if wire[1]["m.shared_history"] != true || len(wire[1]["sender_claimed_keys"].(map[string]any)) != 0 ||
		len(wire[1]["forwarding_curve25519_key_chain"].([]any)) != 2 {
		t.Fatalf("second session's wire form %v", wire[1])
	}
	if strings.Contains(string(data), "=") {
		t.Fatalf("padding in %s", data)
	}

	got, err := UnmarshalSessions(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []ExportedSession{a, b}) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, []ExportedSession{a, b})
	}
	// The session key imports and decrypts what its outbound session sends.
	if _, err := megolm.ImportInboundGroupSession(got[0].SessionKey); err != nil {
		t.Fatal(err)
	}
	if empty, err := MarshalSessions(nil); err != nil || string(empty) != "[]" {
		t.Fatalf("no sessions: %s, %v", empty, err)
	}
}

func mustText(t *testing.T, k SessionKey) []byte {
	b, err := k.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSharedHistoryNames reads the flag under each of its names.
func TestSharedHistoryNames(t *testing.T) {
	s, _ := newSession(t, "!r:x")
	base, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"m.shared_history", "org.matrix.msc3061.shared_history", "shared_history"} {
		for _, v := range []bool{true, false} {
			data := fmt.Sprintf(`[%s,"%s":%t}]`, base[:len(base)-1], name, v)
			got, err := UnmarshalSessions([]byte(data))
			if err != nil || got[0].SharedHistory != v {
				t.Errorf("%s: %v: %+v, %v", name, v, got, err)
			}
		}
	}
}

// TestOptionalFields reads sessions without the two fields matrix-rust-sdk
// defaults, and with padded base64.
func TestOptionalFields(t *testing.T) {
	s, _ := newSession(t, "!r:x")
	data := fmt.Sprintf(`[{"algorithm":%q,"room_id":"!r:x","session_id":%q,"sender_key":%q,"session_key":%q,"extra":{"x":1}}]`,
		MegolmAlgorithm, s.SessionID, base64.StdEncoding.EncodeToString(s.SenderKey.Bytes()),
		base64.StdEncoding.EncodeToString(s.SessionKey))
	got, err := UnmarshalSessions([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0].SessionKey, s.SessionKey) || got[0].SenderKey != s.SenderKey ||
		!got[0].SenderClaimedKeys.Ed25519.IsZero() || got[0].ForwardingCurve25519KeyChain != nil {
		t.Fatalf("%+v", got[0])
	}
}

func TestInvalidSessions(t *testing.T) {
	s, _ := newSession(t, "!r:x")
	other, _ := newSession(t, "!r:x")
	valid, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(field string, value any) string {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		if value == nil {
			delete(m, field)
		} else {
			m[field] = value
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	shortKey, _ := SessionKey(s.SessionKey[:100]).MarshalText()
	v2Key := append([]byte{2}, s.SessionKey[1:]...)
	v2Text, _ := SessionKey(v2Key).MarshalText()
	cases := []struct{ entry, field string }{
		{edit("algorithm", nil), "algorithm"},
		{edit("algorithm", "m.megolm.v2.aes-sha2"), "algorithm"},
		{edit("room_id", nil), "room_id"},
		{edit("room_id", 5), "room_id"},
		{edit("session_id", nil), "session_id"},
		{edit("session_id", other.SessionID), "session_id"},
		{edit("sender_key", nil), "sender_key"},
		{edit("sender_key", "AAAA"), "sender_key"},
		{edit("session_key", nil), "session_key"},
		{edit("session_key", "!!"), "session_key"},
		{edit("session_key", string(shortKey)), "session_key"},
		{edit("session_key", string(v2Text)), "session_key"},
		{edit("sender_claimed_keys", map[string]string{"ed25519": "xyz"}), "sender_claimed_keys.ed25519"},
		{edit("sender_claimed_keys", []string{}), "sender_claimed_keys"},
		{edit("forwarding_curve25519_key_chain", []string{s.SenderKey.String(), "bad"}), "forwarding_curve25519_key_chain[1]"},
		{edit("forwarding_curve25519_key_chain", "x"), "forwarding_curve25519_key_chain"},
		{`null`, "algorithm"},
		{`7`, ""},
	}
	for _, c := range cases {
		data := "[" + string(valid) + "," + c.entry + "]"
		got, err := UnmarshalSessions([]byte(data))
		se, ok := errors.AsType[*SessionError](err)
		if !ok || se.Index != 1 || se.Field != c.field || !errors.Is(err, ErrInvalidSession) || got != nil {
			t.Errorf("%s: %v; want a *SessionError for session 1, field %q", c.entry, err, c.field)
		}
	}

	for _, data := range []string{``, `null`, `{}`, `"x"`, `[1,`, "[\"\xff\"]"} {
		if got, err := UnmarshalSessions([]byte(data)); !errors.Is(err, ErrInvalidFile) || got != nil {
			t.Errorf("UnmarshalSessions(%q) = %v, %v; want ErrInvalidFile", data, got, err)
		}
	}
	if _, err := UnmarshalSessions(make([]byte, MaxFileSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized input: %v", err)
	}

	bad := s
	bad.RoomID = ""
	if _, err := MarshalSessions([]ExportedSession{s, s, bad}); !isSessionError(err, 2, "room_id") {
		t.Errorf("MarshalSessions with an invalid third session: %v", err)
	}
	if _, err := json.Marshal(bad); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("json.Marshal of an invalid session: %v", err)
	}
}

func isSessionError(err error, index int, field string) bool {
	se, ok := errors.AsType[*SessionError](err)
	return ok && se.Index == index && se.Field == field
}

// TestSessionKeyNeverPrints pins what every formatting path shows of a
// session, and of its key alone.
func TestSessionKeyNeverPrints(t *testing.T) {
	s, _ := newSession(t, "!r:x")
	secret := string(mustText(t, s.SessionKey))
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("export", "key", s.SessionKey, "session", s)
	outputs := []string{
		fmt.Sprint(s.SessionKey), fmt.Sprintf("%x", s.SessionKey), fmt.Sprintf("%#v", s.SessionKey),
		fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", []ExportedSession{s}),
		fmt.Sprintf("%s", s.SessionKey), fmt.Sprintf("%q", s.SessionKey), fmt.Sprintf("%d", s.SessionKey),
		logged.String(),
	}
	for _, out := range outputs {
		if !strings.Contains(out, "SessionKey{redacted}") {
			t.Errorf("%q lacks the placeholder", out)
		}
		if strings.Contains(out, secret[:12]) || strings.Contains(out, fmt.Sprintf("%x", []byte(s.SessionKey))[:24]) {
			t.Errorf("%q shows the key", out)
		}
	}
	if got := fmt.Sprint(s.SessionKey); got != "SessionKey{redacted}" {
		t.Errorf("Sprint = %q", got)
	}
}
