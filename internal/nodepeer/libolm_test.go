package nodepeer

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/b64"
)

type identityKeys struct {
	Curve25519 string `json:"curve25519"`
	Ed25519    string `json:"ed25519"`
}

type oneTimeKeys struct {
	Curve25519 map[string]string `json:"curve25519"`
}

type olmMessage struct {
	Type int    `json:"type"`
	Body string `json:"body"`
}

type groupPlaintext struct {
	Plaintext    string `json:"plaintext"`
	MessageIndex int    `json:"message_index"`
}

// handle is the id of an object living in a peer.
type handle = string

func newAccount(p *Peer) handle {
	var a handle
	p.MustCall("account.create", nil, &a)
	return a
}

// flipLast changes the last base64 character of a message, which lies in its
// MAC.
func flipLast(body string) string {
	last := byte('A')
	if body[len(body)-1] == 'A' {
		last = 'B'
	}
	return body[:len(body)-1] + string(last)
}

func onlyKey(t *testing.T, keys map[string]string) string {
	t.Helper()
	if len(keys) != 1 {
		t.Fatalf("want exactly one key, got %v", keys)
	}
	for _, k := range keys {
		return k
	}
	panic("unreachable")
}

// TestLibolmOlmRoundTrip runs a pre-key message and a reply between two libolm
// accounts through the peer, including the failure path of a tampered message.
func TestLibolmOlmRoundTrip(t *testing.T) {
	p := Start(t, "libolm.cjs")
	alice, bob := newAccount(p), newAccount(p)

	var bobKeys identityKeys
	p.MustCall("account.identity_keys", map[string]any{"account": bob}, &bobKeys)
	p.MustCall("account.generate_one_time_keys", map[string]any{"account": bob, "count": 1}, nil)
	var otks oneTimeKeys
	p.MustCall("account.one_time_keys", map[string]any{"account": bob}, &otks)
	otk := onlyKey(t, otks.Curve25519)
	p.MustCall("account.mark_keys_as_published", map[string]any{"account": bob}, nil)

	var out handle
	p.MustCall("session.create_outbound",
		map[string]any{"account": alice, "identity_key": bobKeys.Curve25519, "one_time_key": otk}, &out)
	var pre olmMessage
	p.MustCall("session.encrypt", map[string]any{"session": out, "plaintext": "hello bob"}, &pre)
	if pre.Type != 0 {
		t.Fatalf("first message type = %d, want 0 (pre-key)", pre.Type)
	}

	var in handle
	p.MustCall("session.create_inbound", map[string]any{"account": bob, "body": pre.Body}, &in)
	var matches bool
	p.MustCall("session.matches_inbound", map[string]any{"session": in, "body": pre.Body}, &matches)
	if !matches {
		t.Fatal("inbound session does not match the pre-key message that created it")
	}
	p.MustCall("account.remove_one_time_keys", map[string]any{"account": bob, "session": in}, nil)
	err := p.Call("session.create_inbound", map[string]any{"account": bob, "body": pre.Body}, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Message != "OLM.BAD_MESSAGE_KEY_ID" {
		t.Fatalf("second inbound session from a used one-time key: got %v, want OLM.BAD_MESSAGE_KEY_ID", err)
	}
	var plaintext string
	p.MustCall("session.decrypt", map[string]any{"session": in, "type": pre.Type, "body": pre.Body}, &plaintext)
	if plaintext != "hello bob" {
		t.Fatalf("bob decrypted %q", plaintext)
	}

	var reply olmMessage
	p.MustCall("session.encrypt", map[string]any{"session": in, "plaintext": "hi alice"}, &reply)
	if reply.Type != 1 {
		t.Fatalf("reply type = %d, want 1 (normal message)", reply.Type)
	}
	err = p.Call("session.decrypt", map[string]any{"session": out, "type": 1, "body": flipLast(reply.Body)}, &plaintext)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Message != "OLM.BAD_MESSAGE_MAC" {
		t.Fatalf("tampered message: got %v, want OLM.BAD_MESSAGE_MAC", err)
	}
	p.MustCall("session.decrypt", map[string]any{"session": out, "type": 1, "body": reply.Body}, &plaintext)
	if plaintext != "hi alice" {
		t.Fatalf("alice decrypted %q", plaintext)
	}

	var outID, inID string
	p.MustCall("session.session_id", map[string]any{"session": out}, &outID)
	p.MustCall("session.session_id", map[string]any{"session": in}, &inID)
	if outID != inID {
		t.Fatalf("session ids differ: %s vs %s", outID, inID)
	}

	// A pickled session restores to one that continues the conversation.
	var pickled string
	p.MustCall("session.pickle", map[string]any{"session": in, "key_b64": []byte{1, 2, 3}}, &pickled)
	var restored handle
	p.MustCall("session.unpickle", map[string]any{"key_b64": []byte{1, 2, 3}, "pickle": pickled}, &restored)
	var next olmMessage
	p.MustCall("session.encrypt", map[string]any{"session": out, "plaintext": "again"}, &next)
	p.MustCall("session.decrypt", map[string]any{"session": restored, "type": next.Type, "body": next.Body}, &plaintext)
	if plaintext != "again" {
		t.Fatalf("restored session decrypted %q", plaintext)
	}
	err = p.Call("session.unpickle", map[string]any{"key": "wrong", "pickle": pickled}, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Message != "OLM.BAD_ACCOUNT_KEY" {
		t.Fatalf("unpickle with the wrong key: got %v, want OLM.BAD_ACCOUNT_KEY", err)
	}

	p.MustCall("free", map[string]any{"handle": restored}, nil)
	err = p.Call("session.session_id", map[string]any{"session": restored}, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Code != "UNKNOWN_HANDLE" {
		t.Fatalf("freed handle: got %v, want UNKNOWN_HANDLE", err)
	}
}

// TestLibolmMegolmRoundTrip shares a group session, decrypts in order, and
// checks the exported-key and ratchet-position failure paths.
func TestLibolmMegolmRoundTrip(t *testing.T) {
	p := Start(t, "libolm.cjs")
	var out handle
	p.MustCall("outbound_group.create", nil, &out)
	var sessionKey, sessionID string
	p.MustCall("outbound_group.session_key", map[string]any{"session": out}, &sessionKey)
	p.MustCall("outbound_group.session_id", map[string]any{"session": out}, &sessionID)

	var in handle
	p.MustCall("inbound_group.create", map[string]any{"session_key": sessionKey}, &in)
	var inID string
	p.MustCall("inbound_group.session_id", map[string]any{"session": in}, &inID)
	if inID != sessionID {
		t.Fatalf("inbound session id %s, outbound %s", inID, sessionID)
	}

	bodies := make([]string, 3)
	for i := range bodies {
		var index int
		p.MustCall("outbound_group.message_index", map[string]any{"session": out}, &index)
		if index != i {
			t.Fatalf("message index before message %d = %d", i, index)
		}
		p.MustCall("outbound_group.encrypt", map[string]any{"session": out, "plaintext": string(rune('a' + i))}, &bodies[i])
	}
	for i, body := range bodies {
		var got groupPlaintext
		p.MustCall("inbound_group.decrypt", map[string]any{"session": in, "body": body}, &got)
		if got.Plaintext != string(rune('a'+i)) || got.MessageIndex != i {
			t.Fatalf("message %d decrypted to %+v", i, got)
		}
	}

	var exported string
	p.MustCall("inbound_group.export_session", map[string]any{"session": in, "message_index": 1}, &exported)
	var imported handle
	p.MustCall("inbound_group.import_session", map[string]any{"session_key": exported}, &imported)
	var first int
	p.MustCall("inbound_group.first_known_index", map[string]any{"session": imported}, &first)
	if first != 1 {
		t.Fatalf("first known index of a key exported at 1 = %d", first)
	}
	err := p.Call("inbound_group.decrypt", map[string]any{"session": imported, "body": bodies[0]}, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Message != "OLM.UNKNOWN_MESSAGE_INDEX" {
		t.Fatalf("decrypt before the first known index: got %v, want OLM.UNKNOWN_MESSAGE_INDEX", err)
	}
	var got groupPlaintext
	p.MustCall("inbound_group.decrypt", map[string]any{"session": imported, "body": bodies[2]}, &got)
	if got.Plaintext != "c" || got.MessageIndex != 2 {
		t.Fatalf("imported session decrypted %+v", got)
	}

	var pickled string
	p.MustCall("outbound_group.pickle", map[string]any{"session": out, "key": "secret"}, &pickled)
	var restored handle
	p.MustCall("outbound_group.unpickle", map[string]any{"key": "secret", "pickle": pickled}, &restored)
	var body string
	p.MustCall("outbound_group.encrypt", map[string]any{"session": restored, "plaintext": "d"}, &body)
	p.MustCall("inbound_group.decrypt", map[string]any{"session": in, "body": body}, &got)
	if got.Plaintext != "d" || got.MessageIndex != 3 {
		t.Fatalf("message from the restored outbound session decrypted to %+v", got)
	}
}

// TestLibolmFixedRandomness checks the claim the recorded transcripts rest on:
// with its random bytes supplied, libolm's keys are a pure function of them.
// Account creation draws 64 bytes, the Ed25519 seed then the Curve25519
// private key; each one-time key draws 32.
func TestLibolmFixedRandomness(t *testing.T) {
	p := Start(t, "libolm.cjs")
	t.Cleanup(func() { p.Call("rand.reset", nil, nil) })
	seed := make([]byte, 64)
	for i := range seed {
		seed[i] = byte(i)
	}
	wantEd := b64.Encode(ed25519.NewKeyFromSeed(seed[:32]).Public().(ed25519.PublicKey))
	curve, err := ecdh.X25519().NewPrivateKey(seed[32:64])
	if err != nil {
		t.Fatal(err)
	}
	wantCurve := b64.Encode(curve.PublicKey().Bytes())

	p.MustCall("rand.mode", map[string]any{"mode": "fixed"}, nil)
	pickles := make([]string, 2)
	for i := range pickles {
		p.MustCall("rand.push", map[string]any{"bytes": seed}, nil)
		a := newAccount(p)
		var remaining int
		p.MustCall("rand.remaining", nil, &remaining)
		if remaining != 0 {
			t.Fatalf("account creation left %d of 64 queued bytes", remaining)
		}
		var keys identityKeys
		p.MustCall("account.identity_keys", map[string]any{"account": a}, &keys)
		if keys.Ed25519 != wantEd || keys.Curve25519 != wantCurve {
			t.Fatalf("identity keys %+v, want ed25519 %s curve25519 %s", keys, wantEd, wantCurve)
		}
		p.MustCall("account.pickle", map[string]any{"account": a, "key": "k"}, &pickles[i])
	}
	if pickles[0] != pickles[1] {
		t.Fatal("two accounts from the same bytes pickle differently")
	}

	otkSecret := make([]byte, 32)
	for i := range otkSecret {
		otkSecret[i] = byte(0xa0 + i)
	}
	otkPriv, err := ecdh.X25519().NewPrivateKey(otkSecret)
	if err != nil {
		t.Fatal(err)
	}
	a := newAccountFrom(t, p, seed)
	p.MustCall("rand.push", map[string]any{"bytes": otkSecret}, nil)
	p.MustCall("account.generate_one_time_keys", map[string]any{"account": a, "count": 1}, nil)
	var otks oneTimeKeys
	p.MustCall("account.one_time_keys", map[string]any{"account": a}, &otks)
	if got, want := onlyKey(t, otks.Curve25519), b64.Encode(otkPriv.PublicKey().Bytes()); got != want {
		t.Fatalf("one-time key %s, want %s", got, want)
	}

	// In fixed mode, running short is an error, never a silent fallback.
	err = p.Call("account.create", nil, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Code != "RANDOMNESS_EXHAUSTED" {
		t.Fatalf("create with an empty queue: got %v, want RANDOMNESS_EXHAUSTED", err)
	}
	p.MustCall("rand.push", map[string]any{"bytes": seed[:10]}, nil)
	err = p.Call("account.create", nil, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Code != "RANDOMNESS_EXHAUSTED" {
		t.Fatalf("create with 10 queued bytes: got %v, want RANDOMNESS_EXHAUSTED", err)
	}
	p.MustCall("rand.reset", nil, nil)
	newAccount(p) // real randomness again
}

func newAccountFrom(t *testing.T, p *Peer, seed []byte) handle {
	t.Helper()
	p.MustCall("rand.push", map[string]any{"bytes": seed}, nil)
	return newAccount(p)
}
