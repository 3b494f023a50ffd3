package canonicaljson

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/nodepeer"
)

var update = flag.Bool("update", false, "regenerate "+rustSDKVectors+" from matrix-sdk-crypto-wasm")

const rustSDKVectors = "testdata/rustsdk_keys_upload.txt"

// keysUpload is the part of a /keys/upload request body that is signed.
type keysUpload struct {
	DeviceKeys   json.RawMessage            `json:"device_keys"`
	OneTimeKeys  map[string]json.RawMessage `json:"one_time_keys"`
	FallbackKeys map[string]json.RawMessage `json:"fallback_keys"`
}

// checkUpload verifies every signature of a keys upload body made by another
// implementation: the device keys and each one-time and fallback key are
// signed by the device's Ed25519 key over their canonical form. It returns
// how many signatures it checked.
func checkUpload(t *testing.T, body []byte) int {
	t.Helper()
	var up keysUpload
	if err := json.Unmarshal(body, &up); err != nil {
		t.Fatal(err)
	}
	var dk struct {
		UserID   string            `json:"user_id"`
		DeviceID string            `json:"device_id"`
		Keys     map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(up.DeviceKeys, &dk); err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParseEd25519PublicKey(dk.Keys["ed25519:"+dk.DeviceID])
	if err != nil {
		t.Fatalf("device ed25519 key: %v", err)
	}
	objects := map[string]json.RawMessage{"device_keys": up.DeviceKeys}
	for id, k := range up.OneTimeKeys {
		objects["one_time_keys."+id] = k
	}
	for id, k := range up.FallbackKeys {
		objects["fallback_keys."+id] = k
	}
	for name, obj := range objects {
		if err := Verify(obj, dk.UserID, dk.DeviceID, pub); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// Any change to the signed content breaks the signature.
		i := bytes.Index(obj, []byte(`"`+dk.DeviceID+`"`))
		if name != "device_keys" {
			i = bytes.Index(obj, []byte(`"key":"`)) + len(`"key":`)
		}
		altered := bytes.Clone(obj)
		if altered[i+1] == 'A' { // change the first character of the value
			altered[i+1] = 'B'
		} else {
			altered[i+1] = 'A'
		}
		if err := Verify(altered, dk.UserID, dk.DeviceID, pub); err != ErrBadSignature {
			t.Errorf("%s altered: %v, want ErrBadSignature", name, err)
		}
	}
	if len(up.OneTimeKeys) == 0 {
		t.Fatal("the upload holds no one-time keys")
	}
	return len(objects)
}

// TestRustSDKSignatures verifies the signatures of a keys upload recorded from
// matrix-rust-sdk's OlmMachine, which signs with vodozemac.
func TestRustSDKSignatures(t *testing.T) {
	f, err := os.Open(rustSDKVectors)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var body bytes.Buffer
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			body.Write(sc.Bytes())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n := checkUpload(t, body.Bytes()); n < 10 {
		t.Fatalf("only %d signed objects in the recording", n)
	}
}

// TestRustSDKSignaturesLive verifies a fresh OlmMachine's keys upload, and
// with -update records it as the vectors of TestRustSDKSignatures.
func TestRustSDKSignaturesLive(t *testing.T) {
	p := nodepeer.Start(t, "rustsdk.mjs")
	var machine string
	p.MustCall("machine.initialize", map[string]any{"user_id": "@alice:example.org", "device_id": "ALICEDEVICE"}, &machine)
	var requests []struct {
		Type string          `json:"type"`
		Body json.RawMessage `json:"body"`
	}
	p.MustCall("machine.outgoing_requests", map[string]any{"machine": machine}, &requests)
	if len(requests) == 0 || requests[0].Type != "KeysUpload" {
		t.Fatalf("first requests %+v, want a KeysUpload", requests)
	}
	body := requests[0].Body
	checkUpload(t, body)

	if !*update {
		return
	}
	var v struct {
		Vodozemac       string `json:"vodozemac"`
		MatrixSDKCrypto string `json:"matrix_sdk_crypto"`
	}
	p.MustCall("version", nil, &v)
	var out bytes.Buffer
	fmt.Fprintf(&out, "# The /keys/upload request body of a fresh OlmMachine: device keys and one-time keys,\n")
	fmt.Fprintf(&out, "# each signed with the device's Ed25519 key over its canonical JSON.\n")
	fmt.Fprintf(&out, "# Generated with @matrix-org/matrix-sdk-crypto-wasm (matrix-sdk-crypto %s, vodozemac %s)\n", v.MatrixSDKCrypto, v.Vodozemac)
	fmt.Fprintf(&out, "# by: go test ./internal/canonicaljson -run TestRustSDKSignaturesLive -update\n")
	if err := json.Indent(&out, body, "", " "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	if err := os.MkdirAll(filepath.Dir(rustSDKVectors), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rustSDKVectors, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
