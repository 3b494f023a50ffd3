package libolmpickle

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/cipher"
)

// knownPickle is one record of testdata/libolm_pickles.txt; the file's header
// describes the keys.
type knownPickle map[string]string

func loadKnownPickles(t testing.TB) []knownPickle {
	t.Helper()
	f, err := os.Open("testdata/libolm_pickles.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []knownPickle
	cur := knownPickle{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				out, cur = append(out, cur), knownPickle{}
			}
		default:
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("testdata/libolm_pickles.txt: malformed line %q", line)
			}
			cur[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func (p knownPickle) key(t testing.TB) []byte {
	t.Helper()
	k, err := strconv.Unquote(p["pickle-key"])
	if err != nil {
		t.Fatalf("%s: pickle-key: %v", p["name"], err)
	}
	return []byte(k)
}

func (p knownPickle) hex(t *testing.T, field string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(p[field])
	if err != nil || len(b) != 32 {
		t.Fatalf("%s: %s is not 32 bytes of hex", p["name"], field)
	}
	return [32]byte(b)
}

// TestOpenLibolmPickles opens pickles that libolm's own tests publish with
// their keys and finds the expected values in the raw layout (PROTOCOL §4.2).
func TestOpenLibolmPickles(t *testing.T) {
	for _, p := range loadKnownPickles(t) {
		t.Run(p["name"], func(t *testing.T) {
			raw, err := Open(p.key(t), p["pickle"])
			if err != nil {
				t.Fatalf("%s: %v", p["source"], err)
			}
			d := NewDecoder(raw)
			version := d.U32("version")
			if want, _ := strconv.ParseUint(p["version"], 10, 32); uint64(version) != want {
				t.Fatalf("version %d, want %d", version, want)
			}
			switch {
			case strings.Contains(p["name"], "session"):
				checkSessionLayout(t, p, d, version)
			case p["fallback-key"] != "":
				checkAccountV3Layout(t, p, d)
			}
			// The same raw bytes seal again to a pickle that opens to them.
			if again, err := Open(p.key(t), Seal(p.key(t), raw)); err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("re-sealed pickle: %v", err)
			}
			// Any other key fails authentication.
			if _, err := Open(append(p.key(t), 'x'), p["pickle"]); !errors.Is(err, ErrBadMAC) {
				t.Fatalf("wrong key: %v", err)
			}
		})
	}
}

// checkSessionLayout walks a libolm session pickle with one sender chain.
func checkSessionLayout(t *testing.T, p knownPickle, d *Decoder, version uint32) {
	t.Helper()
	if d.Bool("received message") {
		t.Error("received_message is set; the test expects false")
	}
	for _, field := range []string{"alice-identity", "alice-base", "bob-one-time", "root"} {
		if got := d.Array32(field); got != p.hex(t, field) {
			t.Errorf("%s = %x", field, got)
		}
	}
	if n := d.Count("sender chains", 1); n != 1 {
		t.Fatalf("%d sender chains, want 1", n)
	}
	if got := d.Array32("sender ratchet public"); got != p.hex(t, "sender-ratchet-public") {
		t.Errorf("sender ratchet public key = %x", got)
	}
	if got := d.Array32("sender ratchet private"); got != p.hex(t, "sender-ratchet-private") {
		t.Error("sender ratchet private key differs")
	}
	d.Array32("sender chain key")
	if idx := d.U32("sender chain index"); idx != 0 {
		t.Errorf("sender chain index %d, want 0", idx)
	}
	if n := d.Count("receiver chains", 5); n != 0 {
		t.Errorf("%d receiver chains, want 0", n)
	}
	if n := d.Count("skipped keys", 40); n != 0 {
		t.Errorf("%d skipped keys, want 0", n)
	}
	err := d.Finish()
	switch version {
	case 1:
		if err != nil {
			t.Fatal(err)
		}
	default:
		// Version 2 carries one more u32 after the ratchet; read with the
		// version-1 layout, it is trailing data.
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "4 bytes of trailing data") {
			t.Fatalf("version %d with the version-1 layout: %v", version, err)
		}
	}
}

// checkAccountV3Layout walks a version-3 account: identity keys, one-time
// keys, two fallback key slots and the key id counter.
func checkAccountV3Layout(t *testing.T, p knownPickle, d *Decoder) {
	t.Helper()
	d.Array32("ed25519 public")
	d.Array64("ed25519 private")
	d.Array32("curve25519 public")
	d.Array32("curve25519 private")
	if n := d.Count("one-time keys", 100); n != 0 {
		t.Fatalf("%d one-time keys, want 0", n)
	}
	want, err := b64.DecodeFixed(p["fallback-key"], 32)
	if err != nil {
		t.Fatal(err)
	}
	if id := d.U32("fallback id"); id != 1 {
		t.Errorf("fallback key id %d, want 1 (AAAAAQ)", id)
	}
	if !d.Bool("fallback published") {
		t.Error("fallback key not published; the test expects no unpublished fallback key")
	}
	if got := d.Array32("fallback public"); !bytes.Equal(got[:], want) {
		t.Errorf("fallback key %x, want %x", got, want)
	}
	d.Array32("fallback private")
	d.U32("previous fallback id")
	d.Bool("previous fallback published")
	d.Array32("previous fallback public")
	d.Array32("previous fallback private")
	d.U32("next one-time key id")
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("k"), []byte("secret_key"), bytes.Repeat([]byte{0xa5}, 64)} {
		for n := range 70 {
			raw := bytes.Repeat([]byte{byte(n)}, n)
			p := Seal(key, raw)
			// Base64 of AES-CBC (len+1 rounded up to 16) and an 8-byte MAC, unpadded.
			if want := len(b64.Encode(make([]byte, cipher.CiphertextLen(n)+cipher.MACLength))); len(p) != want || strings.Contains(p, "=") {
				t.Fatalf("key %q, %d bytes: pickle %q", key, n, p)
			}
			got, err := Open(key, p)
			if err != nil || !bytes.Equal(got, raw) {
				t.Fatalf("key %q, %d bytes: %v", key, n, err)
			}
			// The IV is derived from the key, so sealing is deterministic.
			if Seal(key, raw) != p {
				t.Fatalf("key %q, %d bytes: sealing is not deterministic", key, n)
			}
		}
	}
}

func TestOpenRejects(t *testing.T) {
	key := []byte("secret_key")
	good := Seal(key, []byte("raw pickle contents"))
	goodBytes, _ := b64.Decode(good)
	for i := range goodBytes {
		for _, bit := range []byte{0x01, 0x80} {
			c := bytes.Clone(goodBytes)
			c[i] ^= bit
			if raw, err := Open(key, b64.Encode(c)); !errors.Is(err, ErrBadMAC) || raw != nil {
				t.Fatalf("bit flip at %d: %v, %q", i, err, raw)
			}
		}
	}
	if _, err := Open([]byte("secret_kez"), good); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := Open(nil, good); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("empty key: %v", err)
	}
	std := Seal(key, bytes.Repeat([]byte{0xfb}, 90))
	url := strings.NewReplacer("+", "-", "/", "_").Replace(std)
	if url == std {
		t.Fatal("the sample pickle has no '+' or '/' to swap")
	}
	encoding := map[string]string{
		"empty":                 "",
		"one char":              "A",
		"23 bytes":              b64.Encode(goodBytes[:23]),
		"length 1 mod 4":        good[:len(good)-len(good)%4] + "A",
		"not base64":            "!" + good[1:],
		"url alphabet":          url,
		"trailing newline":      good + "\n",
		"embedded newline":      good[:10] + "\n" + good[10:],
		"trailing space":        good + " ",
		"leading space":         " " + good,
		"non-zero trailing bit": good[:len(good)-1] + string(good[len(good)-1]+1),
	}
	for name, p := range encoding {
		if raw, err := Open(key, p); !errors.Is(err, ErrEncoding) || raw != nil {
			t.Errorf("%s: %v, %q", name, err, raw)
		}
	}
	// Dropping the MAC, or cutting the ciphertext, fails authentication.
	for n := 24; n < len(goodBytes); n++ {
		if _, err := Open(key, b64.Encode(goodBytes[:n])); !errors.Is(err, ErrBadMAC) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

// TestOpenAuthenticatedButMalformed builds pickles whose MAC is right but
// whose ciphertext is not whole AES blocks or has bad padding: only the key
// holder can make them, and they still fail with the one opaque error.
func TestOpenAuthenticatedButMalformed(t *testing.T) {
	key := []byte("secret_key")
	k := cipher.Derive(key, cipher.InfoPickle)
	defer k.Clear()
	for _, ct := range [][]byte{make([]byte, 17), make([]byte, 31), make([]byte, 16), make([]byte, 32)} {
		mac := k.MAC(ct)
		p := b64.Encode(append(bytes.Clone(ct), mac[:cipher.MACLength]...))
		if raw, err := Open(key, p); !errors.Is(err, ErrBadMAC) || raw != nil {
			t.Errorf("%d-byte ciphertext: %v, %x", len(ct), err, raw)
		}
	}
}

func TestOpenSizeLimit(t *testing.T) {
	key := []byte("k")
	// The largest raw blob whose pickle still fits in MaxSize characters.
	n := (MaxSize/4*3 - cipher.MACLength) / 16 * 16
	n--
	p := Seal(key, make([]byte, n))
	if len(p) > MaxSize {
		t.Fatalf("%d raw bytes give a %d-byte pickle", n, len(p))
	}
	if _, err := Open(key, p); err != nil {
		t.Fatalf("%d-byte pickle: %v", len(p), err)
	}
	big := Seal(key, make([]byte, n+16))
	if len(big) <= MaxSize {
		t.Fatalf("%d raw bytes still fit: %d", n+16, len(big))
	}
	if raw, err := Open(key, big); !errors.Is(err, ErrEncoding) || raw != nil {
		t.Fatalf("oversize pickle: %v", err)
	}
	if _, err := Open(key, strings.Repeat("A", MaxSize+1)); !errors.Is(err, ErrEncoding) {
		t.Fatalf("oversize garbage: %v", err)
	}
}

// FuzzLibolmPickleOpen checks that only sealed pickles open: for the keys of
// the seeds, an input that opens must be one of the sealed strings (up to
// the base64 padding that the decoder tolerates) and give its raw bytes.
// Every failure is ErrEncoding or ErrBadMAC with no bytes.
func FuzzLibolmPickleOpen(f *testing.F) {
	keys := [][]byte{[]byte("secret_key"), {}}
	sealed := map[string][]byte{} // pickle -> raw
	for _, p := range loadKnownPickles(f) {
		raw, err := Open(p.key(f), p["pickle"])
		if err != nil {
			f.Fatal(err)
		}
		sealed[p["pickle"]] = raw
	}
	for _, key := range keys {
		for _, raw := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("sixteen bytes..."), 3)} {
			sealed[Seal(key, raw)] = raw
		}
	}
	for p := range sealed {
		b, _ := b64.Decode(p)
		f.Add(p)
		f.Add(p + "=")
		f.Add(p[:len(p)-1])
		f.Add(p[1:])
		f.Add(p + "A")
		for _, at := range []int{0, len(b) / 2, len(b) - 9, len(b) - 8, len(b) - 1} {
			c := bytes.Clone(b)
			c[at] ^= 0x04
			f.Add(b64.Encode(c))
		}
	}
	f.Fuzz(func(t *testing.T, p string) {
		for _, key := range keys {
			raw, err := Open(key, p)
			if err != nil {
				if raw != nil || !(errors.Is(err, ErrEncoding) || errors.Is(err, ErrBadMAC)) {
					t.Fatalf("Open = %x, %v", raw, err)
				}
				continue
			}
			want, ok := sealed[strings.TrimRight(p, "=")]
			if !ok {
				t.Fatalf("key %q opened an input that was never sealed: %q", key, p)
			}
			if !bytes.Equal(raw, want) {
				t.Fatalf("key %q: %q opened to %x, want %x", key, p, raw, want)
			}
		}
	})
}
