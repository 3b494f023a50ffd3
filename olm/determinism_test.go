package olm

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

// mockRandom is the MockRandom of libolm's tests/test_olm.cpp: each read of n
// bytes is filled in 32-byte blocks, each block the tag byte followed by a
// counter value repeated, the counter going up by one per block. It only
// reproduces libolm's bytes when each Read asks for exactly what one libolm
// call asks for, which is how this package reads randomness.
type mockRandom struct {
	tag, current byte
}

func (m *mockRandom) Read(p []byte) (int, error) {
	for off := 0; off < len(p); off += 32 {
		block := p[off:min(off+32, len(p))]
		block[0] = m.tag
		for i := 1; i < len(block); i++ {
			block[i] = m.current
		}
		m.current++
	}
	return len(p), nil
}

// countingRandom is an endless deterministic stream that records how many
// bytes were read.
type countingRandom struct {
	n int
}

func (c *countingRandom) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c.n*31 + 7)
		c.n++
	}
	return len(p), nil
}

// readVectors reads a testdata file of "name value" lines; lines starting
// with # (the provenance header) are skipped.
func readVectors(t testing.TB, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := map[string]string{}
	s := bufio.NewScanner(f)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		v[name] = value
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return v
}

func enc64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLibolmLoopbackTranscript replays libolm's loopback test with its mock
// randomness and checks every output byte for byte against libolm's.
func TestLibolmLoopbackTranscript(t *testing.T) {
	want := readVectors(t, "testdata/libolm_loopback.txt")
	ra, rb := &mockRandom{tag: 'A'}, &mockRandom{tag: 'B', current: 0x80}
	check := func(name string, got []byte) {
		t.Helper()
		if string(got) != want[name] {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want[name])
		}
	}

	alice, err := NewAccount(ra)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := NewAccount(rb)
	if err := bob.GenerateOneTimeKeys(rb, 42); err != nil {
		t.Fatal(err)
	}
	check("a_identity", alice.IdentityKeysJSON())
	check("b_identity", bob.IdentityKeysJSON())
	check("b_otks", bob.OneTimeKeysJSON())

	out, err := alice.NewOutboundSession(ra, bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	typ, m1, err := out.Encrypt(ra, []byte("Hello, World"))
	if err != nil || typ != MessageTypePreKey {
		t.Fatal(typ, err)
	}
	check("m1_body", []byte(enc64(m1)))
	pre, err := ParsePreKeyMessage(m1)
	if err != nil {
		t.Fatal(err)
	}
	in, pt, err := bob.NewInboundSession(nil, pre)
	if err != nil || string(pt) != "Hello, World" {
		t.Fatal(pt, err)
	}
	typ, m2, err := in.Encrypt(rb, []byte("Hello, World"))
	if err != nil || typ != MessageTypeNormal {
		t.Fatal(typ, err)
	}
	check("m2_body", []byte(enc64(m2)))
	if pt, err := out.Decrypt(typ, m2); err != nil || string(pt) != "Hello, World" {
		t.Fatal(pt, err)
	}
	typ, m3, err := out.Encrypt(ra, []byte("third"))
	if err != nil || typ != MessageTypeNormal {
		t.Fatal(typ, err)
	}
	check("m3_body", []byte(enc64(m3)))
	check("session_id", []byte(out.ID()))
	check("session_id", []byte(in.ID()))
	check("a_signature", []byte(enc64(alice.Sign([]byte("signed message")))))
	if err := bob.GenerateFallbackKey(rb); err != nil {
		t.Fatal(err)
	}
	check("b_fallback", bob.UnpublishedFallbackKeyJSON())
	check("b_account_pickle", []byte(bob.LibolmPickle([]byte("secret_key"))))
	check("a_session_pickle", []byte(out.LibolmPickle([]byte("secret_key"))))
	check("b_session_pickle", []byte(in.LibolmPickle(nil)))

	// The same stream gives the same bytes again.
	again, _ := NewAccount(&mockRandom{tag: 'A'})
	if !bytes.Equal(again.IdentityKeysJSON(), alice.IdentityKeysJSON()) {
		t.Error("identity keys are not deterministic")
	}
}
