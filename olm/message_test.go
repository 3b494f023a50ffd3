package olm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/wire"
)

func TestParsedMessages(t *testing.T) {
	alice, bob := newSessionPair(t)
	typ, body := encrypt(t, alice, "pre")
	if typ != MessageTypePreKey {
		t.Fatal(typ)
	}
	pre, err := ParsePreKeyMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pre.Bytes(), body) || pre.SessionID() != alice.ID() {
		t.Fatal("pre-key message")
	}
	if pre.IdentityKey() != alice.aliceIdentity || pre.BaseKey() != alice.aliceBase || pre.OneTimeKey() != alice.bobOneTime {
		t.Fatal("pre-key message keys")
	}
	// The inner message is a normal message of the same chain.
	inner := pre.Message()
	if inner.ChainIndex() != 1 || inner.RatchetKey() != alice.ratchet.sender.ratchetKey.PublicKey() {
		t.Fatalf("inner index %d", inner.ChainIndex())
	}
	ot, base, id := pre.OneTimeKey().Array(), pre.BaseKey().Array(), pre.IdentityKey().Array()
	if !bytes.Equal(wire.EncodePreKeyMessage(&ot, &base, &id, inner.Bytes()), body) {
		t.Fatal("pre-key message does not re-encode")
	}
	mustDecrypt(t, bob, typ, body, "pre")

	typ, body = encrypt(t, bob, "normal")
	m, err := ParseMessage(body)
	if err != nil || typ != MessageTypeNormal || !bytes.Equal(m.Bytes(), body) || m.ChainIndex() != 0 {
		t.Fatal("normal message", err)
	}
	// Bytes and Parse copy: changing the input or output changes nothing.
	body[0] ^= 0xff
	if m.Bytes()[0] != wire.Version {
		t.Fatal("message aliases its input")
	}
	m.Bytes()[1] ^= 0xff
	if m.Bytes()[1] == body[1]^0xff {
		t.Fatal("Bytes does not copy")
	}
}

func TestMalformedMessages(t *testing.T) {
	alice, bob := newSessionPair(t)
	typ, body := encrypt(t, alice, "x")
	pre, _ := ParsePreKeyMessage(body)
	inner := pre.Message().Bytes()
	cases := map[string]struct {
		typ  MessageType
		body []byte
	}{
		"empty pre-key":            {MessageTypePreKey, nil},
		"empty normal":             {MessageTypeNormal, nil},
		"truncated pre-key":        {MessageTypePreKey, body[:len(body)-1]},
		"truncated normal":         {MessageTypeNormal, inner[:20]},
		"pre-key as normal":        {MessageTypeNormal, body},
		"normal as pre-key":        {MessageTypePreKey, inner},
		"version 4":                {MessageTypeNormal, append([]byte{4}, inner[1:]...)},
		"unknown type":             {MessageType(2), inner},
		"trailing garbage pre-key": {MessageTypePreKey, append(append([]byte(nil), body...), 0x08)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			decryptFails(t, bob, c.typ, c.body, nil)
			_, err := bob.Decrypt(c.typ, c.body)
			if !errors.Is(err, ErrDecode) && !errors.Is(err, ErrBadMAC) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	for _, b := range [][]byte{nil, {3}, inner[:10], body[:40]} {
		if m, err := ParsePreKeyMessage(b); err == nil || m != nil || !errors.Is(err, ErrDecode) {
			t.Errorf("ParsePreKeyMessage(%x) = %v, %v", b, m, err)
		}
		if m, err := ParseMessage(b); err == nil || m != nil || !errors.Is(err, ErrDecode) {
			t.Errorf("ParseMessage(%x) = %v, %v", b, m, err)
		}
	}
	mustDecrypt(t, bob, typ, body, "x")
}

// libolm 3.2 tests/test_olm_decrypt.cpp: malformed pre-key messages against a
// stored session. libolm base64-decodes its inputs first; here both the raw
// bytes and, where they are base64 at all, their decoding are tried.
func TestLibolmMalformedMessages(t *testing.T) {
	v := readVectors(t, "testdata/libolm_pickles.txt")
	s, err := ImportLibolmSession(v["decrypt_session"], nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range strings.Split(v["decrypt_messages"], ",") {
		raw, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		bodies := [][]byte{raw}
		if decoded, err := b64.Decode(string(raw)); err == nil {
			bodies = append(bodies, decoded)
		}
		for _, b := range bodies {
			for _, typ := range []MessageType{MessageTypePreKey, MessageTypeNormal} {
				decryptFails(t, s, typ, b, ErrDecode)
			}
		}
	}
}
