package canonicaljson

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/keys"
)

// specSigned is the signed-JSON example of the spec's appendices
// (matrix-org/matrix-spec content/appendices.md, "Signing Details"). Its
// signature is illustrative: it does not verify under the key the object
// lists, and the spec gives no private key, so it pins the shape of a signed
// object (what is kept, what is re-attached), not a signature value.
const specSigned = `{
   "name": "example.org",
   "signing_keys": {
     "ed25519:1": "XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ"
   },
   "unsigned": {
      "age_ts": 922834800000
   },
   "signatures": {
      "example.org": {
         "ed25519:1": "s76RUgajp8w172am0zQb/iPTHsRnb4SkrzGoeCOSFfcBY2V/1c8QfrmdXHpvnc2jK5BD1WiJIxiMW95fMjK7Bw"
      }
   }
}`

// specSignedPayload is what the spec's sign_json signs for specSigned.
const specSignedPayload = `{"name":"example.org","signing_keys":{"ed25519:1":"XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ"}}`

func testSeed() *[32]byte {
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(i)
	}
	return &seed
}

// TestSignSpecExample signs the spec's example as a second entity and checks
// the result against crypto/ed25519 over the payload the spec's sign_json
// signs, with the first signature and "unsigned" carried over unchanged.
func TestSignSpecExample(t *testing.T) {
	key := keys.NewEd25519SecretKeyFromSeed(testSeed())
	signed, err := Sign(json.RawMessage(specSigned), "@alice:example.org", "DEVICEID", key)
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(ed25519.NewKeyFromSeed(testSeed()[:]), []byte(specSignedPayload)))
	want := `{"name":"example.org","signatures":{"@alice:example.org":{"ed25519:DEVICEID":"` + sig + `"},` +
		`"example.org":{"ed25519:1":"s76RUgajp8w172am0zQb/iPTHsRnb4SkrzGoeCOSFfcBY2V/1c8QfrmdXHpvnc2jK5BD1WiJIxiMW95fMjK7Bw"}},` +
		`"signing_keys":{"ed25519:1":"XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ"},"unsigned":{"age_ts":922834800000}}`
	if string(signed) != want {
		t.Fatalf("Sign =\n%s\nwant\n%s", signed, want)
	}
	if err := Verify(signed, "@alice:example.org", "DEVICEID", key.PublicKey()); err != nil {
		t.Fatalf("Verify of our own signature: %v", err)
	}

	listed, err := keys.ParseEd25519PublicKey("XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ")
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(json.RawMessage(specSigned), "example.org", "1", listed); err != ErrBadSignature {
		t.Fatalf("the spec's illustrative signature: %v, want ErrBadSignature", err)
	}
}

func TestSignThenVerify(t *testing.T) {
	key := keys.NewEd25519SecretKeyFromSeed(testSeed())
	other, err := keys.GenerateEd25519SecretKey(strings.NewReader(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	obj := json.RawMessage(`{"user_id":"@a:x","device_id":"D","keys":{"ed25519:D":"k"},"unsigned":{"device_display_name":"phone"},"n":1e2}`)
	signed, err := Sign(obj, "@a:x", "D", key)
	if err != nil {
		t.Fatal(err)
	}
	// A second signer is added beside the first, as cross-signing does.
	signed, err = Sign(signed, "@b:x", "OTHER", other)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		entity, keyID string
		pub           keys.Ed25519PublicKey
	}{{"@a:x", "D", key.PublicKey()}, {"@b:x", "OTHER", other.PublicKey()}} {
		if err := Verify(signed, c.entity, c.keyID, c.pub); err != nil {
			t.Errorf("Verify(%s, %s): %v", c.entity, c.keyID, err)
		}
	}
	if err := Verify(signed, "@a:x", "D", other.PublicKey()); err != ErrBadSignature {
		t.Errorf("Verify with the wrong key: %v, want ErrBadSignature", err)
	}

	// Re-signing under the same name replaces the signature, keeps the other.
	resigned, err := Sign(signed, "@a:x", "D", other)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(resigned, "@a:x", "D", other.PublicKey()); err != nil {
		t.Errorf("after re-signing: %v", err)
	}
	if err := Verify(resigned, "@b:x", "OTHER", other.PublicKey()); err != nil {
		t.Errorf("other signer after re-signing: %v", err)
	}

	// Whitespace, key order, escapes, number notation and "unsigned" are not
	// covered; content is.
	var m map[string]any
	if err := json.Unmarshal(signed, &m); err != nil {
		t.Fatal(err)
	}
	m["unsigned"] = map[string]any{"age": 5}
	reordered, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(reordered, "@a:x", "D", key.PublicKey()); err != nil {
		t.Errorf("re-encoded object with another unsigned: %v", err)
	}
	m["device_id"] = "E"
	altered, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(altered, "@a:x", "D", key.PublicKey()); err != ErrBadSignature {
		t.Errorf("altered content: %v, want ErrBadSignature", err)
	}
}

func TestVerifyFailures(t *testing.T) {
	key := keys.NewEd25519SecretKeyFromSeed(testSeed())
	pub := key.PublicKey()
	good, err := Sign(json.RawMessage(`{"a":1}`), "@a:x", "D", key)
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Signatures map[string]map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal(good, &parsed); err != nil {
		t.Fatal(err)
	}
	sig := parsed.Signatures["@a:x"]["ed25519:D"]
	raw, _ := base64.RawStdEncoding.DecodeString(sig)
	raw[0] ^= 1
	flipped := base64.RawStdEncoding.EncodeToString(raw)

	missing := []string{
		`{"a":1}`,
		`{"a":1,"signatures":{}}`,
		`{"a":1,"signatures":{"@a:x":{}}}`,
		`{"a":1,"signatures":{"@a:x":{"ed25519:E":"` + sig + `"}}}`,
		`{"a":1,"signatures":{"@b:x":{"ed25519:D":"` + sig + `"}}}`,
	}
	for _, in := range missing {
		err := Verify(json.RawMessage(in), "@a:x", "D", pub)
		var me *MissingSignatureError
		if !errors.As(err, &me) || me.Entity != "@a:x" || me.KeyID != "ed25519:D" || !errors.Is(err, ErrMissingSignature) {
			t.Errorf("Verify(%s) = %v, want a *MissingSignatureError", in, err)
		}
	}
	bad := []string{
		`{"a":2,"signatures":{"@a:x":{"ed25519:D":"` + sig + `"}}}`,
		`{"a":1,"signatures":{"@a:x":{"ed25519:D":"` + flipped + `"}}}`,
		`{"a":1,"signatures":{"@a:x":{"ed25519:D":"` + sig + `="}}}`,
		`{"a":1,"signatures":{"@a:x":{"ed25519:D":"` + sig[:40] + `"}}}`,
		`{"a":1,"signatures":{"@a:x":{"ed25519:D":"!!"}}}`,
		`{"a":1,"signatures":{"@a:x":{"ed25519:D":7}}}`,
		`{"a":1,"signatures":{"@a:x":["` + sig + `"]}}`,
		`{"a":1,"signatures":"` + sig + `"}`,
	}
	for _, in := range bad {
		if err := Verify(json.RawMessage(in), "@a:x", "D", pub); err != ErrBadSignature {
			t.Errorf("Verify(%s) = %v, want ErrBadSignature", in, err)
		}
	}
	// Padded base64 is read too, as the spec asks of decoders.
	padded := `{"a":1,"signatures":{"@a:x":{"ed25519:D":"` + sig + `=="}}}`
	if err := Verify(json.RawMessage(padded), "@a:x", "D", pub); err != nil {
		t.Errorf("padded signature: %v", err)
	}

	notObjects := []string{`[]`, `"x"`, `null`, `1`}
	for _, in := range notObjects {
		if err := Verify(json.RawMessage(in), "@a:x", "D", pub); !errors.Is(err, ErrNotObject) {
			t.Errorf("Verify(%s) = %v, want ErrNotObject", in, err)
		}
		if out, err := Sign(json.RawMessage(in), "@a:x", "D", key); !errors.Is(err, ErrNotObject) || out != nil {
			t.Errorf("Sign(%s) = %s, %v; want ErrNotObject", in, out, err)
		}
	}
	for _, in := range []string{`{"signatures":[]}`, `{"signatures":{"@a:x":"s"}}`} {
		if out, err := Sign(json.RawMessage(in), "@a:x", "D", key); !errors.Is(err, ErrNotObject) || out != nil {
			t.Errorf("Sign(%s) = %s, %v; want ErrNotObject", in, out, err)
		}
	}
	for _, name := range [][2]string{{"@a:x\xff", "D"}, {"@a:x", "D\xed\xa0\x80"}} {
		if out, err := Sign(json.RawMessage(`{}`), name[0], name[1], key); !errors.Is(err, ErrInvalidUTF8) || out != nil {
			t.Errorf("Sign as %q %q = %s, %v; want ErrInvalidUTF8", name[0], name[1], out, err)
		}
	}
	for _, in := range []string{`{"a":1,"a":2}`, `{"a":0.5}`, `{"a":"\ud800"}`} {
		if err := Verify(json.RawMessage(in), "@a:x", "D", pub); err == nil || err == ErrBadSignature {
			t.Errorf("Verify(%s) = %v, want the parse error", in, err)
		}
	}
}

// TestSignLeavesInputAlone checks that Sign neither modifies its argument nor
// depends on its layout beyond its content.
func TestSignLeavesInputAlone(t *testing.T) {
	key := keys.NewEd25519SecretKeyFromSeed(testSeed())
	in := []byte(`{ "b" : [1, 2], "a" : {"unsigned": 1, "signatures": 2}, "unsigned": null }`)
	before := string(in)
	out, err := Sign(in, "@a:x", "D", key)
	if err != nil {
		t.Fatal(err)
	}
	if string(in) != before {
		t.Fatalf("Sign changed its input to %s", in)
	}
	// Only the top-level members are set aside; a nested "unsigned" is signed.
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(ed25519.NewKeyFromSeed(testSeed()[:]),
		[]byte(`{"a":{"signatures":2,"unsigned":1},"b":[1,2]}`)))
	want := `{"a":{"signatures":2,"unsigned":1},"b":[1,2],"signatures":{"@a:x":{"ed25519:D":"` + sig + `"}},"unsigned":null}`
	if string(out) != want {
		t.Fatalf("Sign =\n%s\nwant\n%s", out, want)
	}
}
