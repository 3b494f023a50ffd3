package interop

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/olm"
)

// libolm errors, as @matrix-org/olm throws them.
const (
	libolmBadMAC          = "OLM.BAD_MESSAGE_MAC"
	libolmBadSignature    = "OLM.BAD_SIGNATURE"
	libolmBadMessageKeyID = "OLM.BAD_MESSAGE_KEY_ID"
	libolmUnknownIndex    = "OLM.UNKNOWN_MESSAGE_INDEX"
)

// libolm is a live libolm peer, tests/node/libolm.cjs, drawing real
// randomness. Objects in it are named by handles.
type libolm struct {
	t *testing.T
	p *nodepeer.Peer
}

// startLibolm starts the peer, or skips the test where Node is missing
// (fails it under CI=true).
func startLibolm(t *testing.T) *libolm {
	t.Helper()
	return &libolm{t: t, p: nodepeer.Start(t, "libolm.cjs")}
}

// call runs method and decodes its result into result (unless nil); any
// error fails the test.
func (l *libolm) call(method string, params map[string]any, result any) {
	l.t.Helper()
	l.p.MustCall(method, params, result)
}

// handle calls a method that creates an object and returns its handle.
func (l *libolm) handle(method string, params map[string]any) string {
	l.t.Helper()
	var h string
	l.call(method, params, &h)
	return h
}

// str calls a method that returns a string.
func (l *libolm) str(method string, params map[string]any) string {
	l.t.Helper()
	var s string
	l.call(method, params, &s)
	return s
}

// fails calls method, which must fail with libolm's error want.
func (l *libolm) fails(method string, params map[string]any, want string) {
	l.t.Helper()
	if err := l.p.Call(method, params, nil); !isLibolmError(err, want) {
		l.t.Fatalf("%s: got %v, want libolm's %s", method, err, want)
	}
}

func isLibolmError(err error, want string) bool {
	re, ok := errors.AsType[*nodepeer.RemoteError](err)
	return ok && re.Message == want
}

// libolmAccount is an account living in the peer.
type libolmAccount struct {
	l *libolm
	h string
}

func (l *libolm) newAccount() libolmAccount {
	l.t.Helper()
	return libolmAccount{l: l, h: l.handle("account.create", nil)}
}

func (a libolmAccount) identityKeys() (curve olm.Curve25519PublicKey, ed olm.Ed25519PublicKey) {
	a.l.t.Helper()
	var keys struct {
		Curve25519 string `json:"curve25519"`
		Ed25519    string `json:"ed25519"`
	}
	a.l.call("account.identity_keys", map[string]any{"account": a.h}, &keys)
	return parseCurve(a.l.t, keys.Curve25519), parseEd(a.l.t, keys.Ed25519)
}

// keyJSON reads a {"curve25519": {id: key}} document of the account.
func (a libolmAccount) keyJSON(method string) map[string]string {
	a.l.t.Helper()
	var doc struct {
		Curve25519 map[string]string `json:"curve25519"`
	}
	a.l.call(method, map[string]any{"account": a.h}, &doc)
	return doc.Curve25519
}

// publishOneTimeKeys generates n one-time keys, marks them published and
// returns them by ID.
func (a libolmAccount) publishOneTimeKeys(n int) map[string]string {
	a.l.t.Helper()
	a.l.call("account.generate_one_time_keys", map[string]any{"account": a.h, "count": n}, nil)
	keys := a.keyJSON("account.one_time_keys")
	if len(keys) != n {
		a.l.t.Fatalf("libolm generated %d one-time keys, want %d", len(keys), n)
	}
	a.l.call("account.mark_keys_as_published", map[string]any{"account": a.h}, nil)
	return keys
}

// publishFallbackKey generates a fallback key, marks it published and
// returns it.
func (a libolmAccount) publishFallbackKey() string {
	a.l.t.Helper()
	a.l.call("account.generate_fallback_key", map[string]any{"account": a.h}, nil)
	keys := a.keyJSON("account.unpublished_fallback_key")
	if len(keys) != 1 {
		a.l.t.Fatalf("libolm's unpublished fallback key: %v", keys)
	}
	a.l.call("account.mark_keys_as_published", map[string]any{"account": a.h}, nil)
	for _, k := range keys {
		return k
	}
	return ""
}

// outbound starts a libolm session to the given keys.
func (a libolmAccount) outbound(identityKey, oneTimeKey olm.Curve25519PublicKey) *libolmSession {
	a.l.t.Helper()
	h := a.l.handle("session.create_outbound",
		map[string]any{"account": a.h, "identity_key": identityKey.String(), "one_time_key": oneTimeKey.String()})
	return &libolmSession{l: a.l, h: h}
}

// inbound creates libolm's side of a session from a pre-key message, checks
// that it matches, removes the one-time key when removeKey is set (not for a
// fallback key, which libolm keeps) and returns it with the plaintext.
func (a libolmAccount) inbound(pre olmMessage, removeKey bool) (*libolmSession, string) {
	a.l.t.Helper()
	s := &libolmSession{l: a.l, h: a.l.handle("session.create_inbound", map[string]any{"account": a.h, "body": pre.Body})}
	var matches bool
	a.l.call("session.matches_inbound", map[string]any{"session": s.h, "body": pre.Body}, &matches)
	if !matches {
		a.l.t.Fatal("libolm's inbound session does not match its pre-key message")
	}
	if removeKey {
		a.l.call("account.remove_one_time_keys", map[string]any{"account": a.h, "session": s.h}, nil)
	}
	plaintext, err := s.decrypt(pre)
	if err != nil {
		a.l.t.Fatalf("libolm decrypting the pre-key message that created its session: %v", err)
	}
	return s, plaintext
}

// newXolmAccount creates an xolm account from real randomness.
func newXolmAccount(t *testing.T) *olm.Account {
	t.Helper()
	a, err := olm.NewAccount(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func parseCurve(t testing.TB, s string) olm.Curve25519PublicKey {
	t.Helper()
	k, err := olm.ParseCurve25519PublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parseEd(t testing.TB, s string) olm.Ed25519PublicKey {
	t.Helper()
	k, err := olm.ParseEd25519PublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verifyEd25519 checks a base64 Ed25519 signature with the standard library.
func verifyEd25519(t *testing.T, key olm.Ed25519PublicKey, message []byte, signature string) {
	t.Helper()
	sig, err := b64.Decode(signature)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(ed25519.PublicKey(key.Bytes()), message, sig) {
		t.Fatalf("signature %s by %s does not verify", signature, key)
	}
}

// randomPickleKey is a libolm pickle key of arbitrary bytes, passed to the
// peer as key_b64 (encoding/json writes []byte as base64).
func randomPickleKey(t *testing.T) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// mustJSON is v in JSON, for comparing documents.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// objectParam is the name of the parameter that passes an object of kind
// ("account", "session", "outbound_group", "inbound_group") to the peer.
func objectParam(kind string) string {
	if kind == "account" {
		return "account"
	}
	return "session"
}

// pickle pickles the peer's object h of kind under key.
func (l *libolm) pickle(kind, h string, key []byte) string {
	l.t.Helper()
	return l.str(kind+".pickle", map[string]any{objectParam(kind): h, "key_b64": key})
}

// unpickle unpickles pickle into a new object of kind, checks that libolm
// pickles it back to the same string, and returns its handle.
func (l *libolm) unpickle(kind string, key []byte, pickle string) string {
	l.t.Helper()
	h := l.handle(kind+".unpickle", map[string]any{"key_b64": key, "pickle": pickle})
	if again := l.pickle(kind, h, key); again != pickle {
		l.t.Fatalf("libolm pickles xolm's %s differently:\nlibolm %s\nxolm   %s", kind, again, pickle)
	}
	return h
}
