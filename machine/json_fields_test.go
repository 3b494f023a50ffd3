package machine

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
	"unsafe"

	"github.com/xolm/xolm/olm"
)

// readObject accepts exactly the JSON objects encoding/json accepts, minus
// invalid UTF-8 and a named member given twice, and picks out the same raw
// values.
func TestReadObjectAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a" : "x" , "b":[1,2,{"c":null}]}`, "{\"a\":\"\\u00e9\\n\"}\n",
		`{"a":-0.5e+10,"b":true,"c":false,"d":null,"e":[],"f":{}}`, `{"a":[[[[{"b":[{}]}]]]]}`,
		`{"é":"ü","a":"日本"}`, `{"a":"\ud800"}`, `{"\u0061":1}`, `{"A":1}`,
		// Invalid.
		``, `[]`, `"a"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`, `{"a":01}`,
		`{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`, `{"a":"\x01"}`,
		`{"a":"\q"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, `{"a":[1,]}`, `{"a":[1}`, `{"a":{"b":1]}`,
		`{"a":{"b"}}`, `{"a":1}x`, `{"a":1}{}`, "{\"a\":\"\xff\"}", `{"a":"abc`, `{"a":"` + strings.Repeat("x", 20),
	} {
		var a, b []byte
		err := readObject([]byte(in), jsonMember{"a", &a}, jsonMember{"b", &b})
		var m map[string]json.RawMessage
		want := json.Unmarshal([]byte(in), &m) == nil && strings.HasPrefix(strings.TrimSpace(in), "{") && utf8.ValidString(in)
		if (err == nil) != want {
			t.Errorf("%q: readObject says %v, encoding/json %t", in, err, want)
			continue
		}
		if err == nil && (!bytes.Equal(a, rawMember(m, "a")) || !bytes.Equal(b, rawMember(m, "b"))) {
			t.Errorf("%q: picked %q and %q", in, a, b)
		}
	}
}

// rawMember is the member of m named exactly key, as readObject picks it.
func rawMember(m map[string]json.RawMessage, key string) []byte {
	for k, v := range m {
		if k == key {
			return v
		}
	}
	return nil
}

// A member asked for that is given twice is refused; other members may
// repeat, as encoding/json allows.
func TestReadObjectRefusesARepeatedMember(t *testing.T) {
	var a []byte
	if err := readObject([]byte(`{"a":1,"\u0061":2}`), jsonMember{"a", &a}); err == nil {
		t.Fatal("repeated member accepted")
	}
	a = nil
	if err := readObject([]byte(`{"b":1,"b":2,"a":3}`), jsonMember{"a", &a}); err != nil || string(a) != "3" {
		t.Fatalf("%q, %v", a, err)
	}
}

func TestJSONValues(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want string
		ok   bool
	}{{`"x"`, "x", true}, {`"\u00e9\"\\"`, `é"\`, true}, {`null`, "", true}, {``, "", true},
		{`1`, "", false}, {`{}`, "", false}, {`true`, "", false}} {
		var raw []byte
		if c.raw != "" {
			raw = []byte(c.raw)
		}
		got, err := jsonString(raw)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("jsonString(%s) = %q, %v", c.raw, got, err)
		}
	}
	// jsonStringWant reads what jsonString reads, whatever it is compared
	// with, and returns the wanted string itself only for the same value
	// written without escapes.
	for _, c := range []struct{ raw, want string }{{`"@bob:x"`, "@bob:x"}, {`"\u0040bob:x"`, "@bob:x"},
		{`"a\\b"`, `a\b`}, {`"a\\b"`, `a\\b`}, {`"@bob:y"`, "@bob:x"}, {`null`, ""}, {`""`, ""}, {`1`, "1"}} {
		got, err := jsonStringWant([]byte(c.raw), c.want)
		want, wantErr := jsonString([]byte(c.raw))
		if got != want || (err == nil) != (wantErr == nil) {
			t.Errorf("jsonStringWant(%s, %q) = %q, %v; jsonString: %q, %v", c.raw, c.want, got, err, want, wantErr)
		}
		same := err == nil && got == c.want && unsafe.StringData(got) == unsafe.StringData(c.want)
		if wantSame := c.raw == `"`+c.want+`"` && !strings.Contains(c.want, `\`); same != wantSame && c.want != "" {
			t.Errorf("jsonStringWant(%s, %q): returned the wanted string itself: %v, want %v", c.raw, c.want, same, wantSame)
		}
	}
	for _, c := range []struct {
		raw  string
		want int64
		ok   bool
	}{{`1`, 1, true}, {`-7`, -7, true}, {`null`, 0, true}, {`1.0`, 0, false}, {`1e2`, 0, false},
		{`"1"`, 0, false}, {`99999999999999999999`, 0, false}} {
		got, err := jsonInt([]byte(c.raw))
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("jsonInt(%s) = %d, %v", c.raw, got, err)
		}
	}
}

// appendJSONString writes JSON that reads back as the string, with invalid
// UTF-8 as U+FFFD.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s/`, "\x00\x1f\n\r\t", "é日本\u2028", "bad\xffbyte"} {
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: %s: %v", s, out, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Fatalf("%q: reads back as %q", s, back)
		}
	}
}

// The word-at-a-time test finds every byte that needs a closer look.
func TestPlainASCII8(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			word := []byte("abcdefgh")
			word[pos] = byte(c)
			var x uint64
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(word[i])
			}
			plain := c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
			if plainASCII8(x) != plain {
				t.Fatalf("byte %#x at %d: plainASCII8 says %t", c, pos, !plain)
			}
		}
	}
}

// FuzzReadObject: readObject never accepts what encoding/json refuses, and
// picks out what encoding/json reads.
func FuzzReadObject(f *testing.F) {
	f.Add([]byte(`{"a":"x","b":[1,{"c":"\u00e9"}]}`))
	f.Add([]byte(`{"a":{"b":1e5},"c":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var a, b []byte
		if readObject(in, jsonMember{"a", &a}, jsonMember{"b", &b}) != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(in, &m); err != nil || !utf8.Valid(in) {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", in, err)
		}
		if !bytes.Equal(a, rawMember(m, "a")) || !bytes.Equal(b, rawMember(m, "b")) {
			t.Fatalf("%q: picked %q and %q", in, a, b)
		}
	})
}

// BenchmarkParseToDevice reads a typical encrypted to-device event and its
// decrypted payload, as ReceiveSyncChanges does.
func BenchmarkParseToDevice(b *testing.B) {
	clock := newStepClock()
	alice := newTDPeer(b, "@alice:example.org", "ALICE", clock)
	bob := newTDPeer(b, "@bob:example.org", "BOB", clock)
	introducePeers(b, alice, bob)
	olmConnect(b, alice, bob)
	ev := olmSend(b, alice, bob, "m.test", `{}`)
	payload := []byte(olmPayload(alice, bob, nil))
	ourKey := bob.ids.Curve25519.String()
	for b.Loop() {
		if res, ev := parseToDevice(ev, ourKey); ev == nil {
			b.Fatal(res.Err)
		}
		if _, err := parsePlaintext(payload, &olmPlaintext{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCanonicalKey: a sender key is kept in unpadded base64 however the
// event wrote it, and one written so is not copied.
func TestCanonicalKey(t *testing.T) {
	canonical := strings.Clone("3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08") // a string of its own
	key, err := olm.ParseCurve25519PublicKey(canonical)
	if err != nil {
		t.Fatal(err)
	}
	if got := canonicalKey(canonical+"=", key); got != canonical {
		t.Fatalf("padded: %q, want %q", got, canonical)
	}
	if got := canonicalKey(canonical, key); unsafe.StringData(got) != unsafe.StringData(canonical) {
		t.Fatal("the canonical form was copied")
	}
}
