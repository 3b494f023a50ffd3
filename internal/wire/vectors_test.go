package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"os"
	"strconv"
	"strings"
	"testing"
)

// vector is one record of testdata/vectors.txt; the file's header describes
// the keys.
type vector map[string]string

// loadVectors parses testdata/vectors.txt: blank-line separated records of
// "key: value" lines, with '#' comment lines.
func loadVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	cur := vector{}
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur = vector{}
		}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			flush()
		default:
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("testdata/vectors.txt: malformed line %q", line)
			}
			if _, dup := cur[k]; dup {
				t.Fatalf("testdata/vectors.txt: key %q repeated in one record", k)
			}
			cur[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	for _, v := range out {
		if v["name"] == "" || v["source"] == "" || v["kind"] == "" || v["want"] == "" {
			t.Fatalf("testdata/vectors.txt: record without name, source, kind or want: %v", v)
		}
	}
	return out
}

// input returns the message bytes of a vector.
func (v vector) input(t testing.TB) []byte {
	t.Helper()
	if s, ok := v["input-b64"]; ok {
		b, err := base64.RawStdEncoding.Strict().DecodeString(s)
		if err != nil {
			t.Fatalf("%s: input-b64: %v", v["name"], err)
		}
		return b
	}
	return unhex(t, v["input"])
}

// bytes returns a hex part of a vector.
func (v vector) bytes(t *testing.T, key string) []byte {
	t.Helper()
	s, ok := v[key]
	if !ok {
		t.Fatalf("%s: no %q", v["name"], key)
	}
	return unhex(t, s)
}

func (v vector) uint32(t *testing.T, key string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(v[key], 10, 32)
	if err != nil {
		t.Fatalf("%s: %s: %v", v["name"], key, err)
	}
	return uint32(n)
}

// forEachVector runs fn for every published vector as a parallel subtest.
func forEachVector(t *testing.T, fn func(t *testing.T, v vector)) {
	for _, v := range loadVectors(t) {
		t.Run(v["name"], func(t *testing.T) {
			t.Parallel()
			fn(t, v)
		})
	}
}

func TestPublishedVectors(t *testing.T) {
	forEachVector(t, func(t *testing.T, v vector) {
		in := v.input(t)
		var encoded []byte
		switch v["kind"] {
		case "olm":
			m, err := DecodeOlmMessage(in)
			if v["want"] == "decode-error" {
				rejectDecode(t, v["name"], m, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.RatchetKey[:], v.bytes(t, "ratchet-key")) || m.ChainIndex != v.uint32(t, "chain-index") ||
				!bytes.Equal(m.Ciphertext, v.bytes(t, "ciphertext")) || !bytes.Equal(m.MAC[:], v.bytes(t, "mac")) {
				t.Fatalf("decoded %+v", m)
			}
			encoded = sealOlm(&m.RatchetKey, m.ChainIndex, m.Ciphertext, string(m.MAC[:]))
		case "prekey":
			m, err := DecodePreKeyMessage(in)
			if v["want"] == "decode-error" {
				rejectDecode(t, v["name"], m, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.OneTimeKey[:], v.bytes(t, "one-time-key")) || !bytes.Equal(m.BaseKey[:], v.bytes(t, "base-key")) ||
				!bytes.Equal(m.IdentityKey[:], v.bytes(t, "identity-key")) || !bytes.Equal(m.Message, v.bytes(t, "inner")) {
				t.Fatalf("decoded %+v", m)
			}
			if _, err := DecodeOlmMessage(m.Message); err != nil {
				t.Fatalf("inner message: %v", err)
			}
			encoded = EncodePreKeyMessage(&m.OneTimeKey, &m.BaseKey, &m.IdentityKey, m.Message)
		case "megolm":
			m, err := DecodeMegolmMessage(in)
			if v["want"] == "decode-error" {
				rejectDecode(t, v["name"], m, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Index != v.uint32(t, "index") || !bytes.Equal(m.Ciphertext, v.bytes(t, "ciphertext")) ||
				!bytes.Equal(m.MAC[:], v.bytes(t, "mac")) || !bytes.Equal(m.Signature[:], v.bytes(t, "signature")) {
				t.Fatalf("decoded %+v", m)
			}
			encoded = sealMegolm(m.Index, m.Ciphertext, string(m.MAC[:]), m.Signature)
		default:
			t.Fatalf("unknown kind %q", v["kind"])
		}
		if v["want"] != "ok" {
			t.Fatalf("unknown outcome class %q", v["want"])
		}
		if v["canonical"] == "yes" && !bytes.Equal(encoded, in) {
			t.Fatalf("re-encoding gives\n%x\nwant\n%x", encoded, in)
		}
	})
}

// TestVodozemacEncodeVector checks the encoder, not just the decoder, against
// vodozemac src/olm/messages/message.rs, test encode: the bytes before the MAC
// and the whole message.
func TestVodozemacEncodeVector(t *testing.T) {
	key := (*[KeyLength]byte)([]byte("ratchetkeyhereprettyplease123456"))
	want := []byte("\x03\n\x20ratchetkeyhereprettyplease123456\x10\x02\"\nciphertext")
	b := EncodeOlmMessage(key, 2, []byte("ciphertext"))
	if !bytes.Equal(b[:len(b)-MACLength], want) {
		t.Fatalf("MAC input %q, want %q", b[:len(b)-MACLength], want)
	}
	copy(b[len(b)-MACLength:], "MACHEREE")
	if !bytes.Equal(b, append(want, "MACHEREE"...)) {
		t.Fatalf("message %q", b)
	}
}

// TestLibolmMessageVectorWithFullKey takes libolm's "Message decode test"
// bytes (tests/test_message.cpp: counter first, then ratchet key, then
// ciphertext) and widens the 10-byte ratchet key to 32 bytes, which this
// decoder requires: the out-of-order fields then decode to counter 1.
func TestLibolmMessageVectorWithFullKey(t *testing.T) {
	key := []byte("ratchetkey----------------------")
	b := cat([]byte("\x03\x10\x01\n\x20"), key, []byte("\"\nciphertexthmacsha2"))
	m, err := DecodeOlmMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.RatchetKey[:], key) || m.ChainIndex != 1 || string(m.Ciphertext) != "ciphertext" || string(m.MAC[:]) != "hmacsha2" {
		t.Fatalf("decoded %+v", m)
	}
	// Re-encoding puts the fields in the canonical order, as libolm's
	// "Message encode test" expects (key, counter, ciphertext).
	want := cat([]byte("\x03\n\x20"), key, []byte("\x10\x01\"\nciphertexthmacsha2"))
	if got := sealOlm(&m.RatchetKey, m.ChainIndex, m.Ciphertext, "hmacsha2"); !bytes.Equal(got, want) {
		t.Fatalf("re-encoded %q, want %q", got, want)
	}
}
