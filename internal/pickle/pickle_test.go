package pickle

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestRoundTripAndBinding(t *testing.T) {
	key := &[KeySize]byte{1, 2, 3}
	pt := []byte("state bytes")
	s := Seal(key, KindSession, []byte("olm_sessions/abc/v1"), pt)
	got, err := Open(key, KindSession, []byte("olm_sessions/abc/v1"), s)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %v", err)
	}
	if s2 := Seal(key, KindSession, []byte("olm_sessions/abc/v1"), pt); bytes.Equal(s, s2) {
		t.Fatal("nonce reused")
	}
	for name, try := range map[string]func() ([]byte, error){
		"other ad":   func() ([]byte, error) { return Open(key, KindSession, []byte("olm_sessions/abd/v1"), s) },
		"other kind": func() ([]byte, error) { return Open(key, KindAccount, []byte("olm_sessions/abc/v1"), s) },
		"other key":  func() ([]byte, error) { return Open(&[KeySize]byte{9}, KindSession, []byte("olm_sessions/abc/v1"), s) },
	} {
		if _, err := try(); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	for i := range s {
		c := bytes.Clone(s)
		c[i] ^= 0x10
		if _, err := Open(key, KindSession, []byte("olm_sessions/abc/v1"), c); err == nil {
			t.Fatalf("flip at %d accepted", i)
		}
	}
	for n := 0; n < len(s); n++ {
		if _, err := Open(key, KindSession, []byte("olm_sessions/abc/v1"), s[:n]); err == nil {
			t.Fatalf("truncation to %d accepted", n)
		}
	}
	if _, err := Open(key, KindSession, nil, make([]byte, MaxSize+1)); !errors.Is(err, ErrFormat) {
		t.Fatalf("oversize: %v", err)
	}
}

func TestSealLayout(t *testing.T) {
	key := &[KeySize]byte{7}
	for _, kind := range []Kind{KindAccount, KindSession, KindOutboundGroup, KindInboundGroup} {
		for _, n := range []int{0, 1, 100} {
			s := Seal(key, kind, nil, make([]byte, n))
			if s[0] != envelopeVersion || Kind(s[1]) != kind {
				t.Fatalf("kind %d: header %x", kind, s[:2])
			}
			if want := 2 + 24 + n + 16; len(s) != want {
				t.Fatalf("kind %d, %d bytes: sealed length %d, want %d", kind, n, len(s), want)
			}
			pt, err := Open(key, kind, nil, s)
			if err != nil || len(pt) != n {
				t.Fatalf("kind %d, %d bytes: %v", kind, n, err)
			}
		}
	}
}

// TestNilAndEmptyAssociatedData: the store always binds a non-empty row
// label, but nil and empty must mean the same thing.
func TestNilAndEmptyAssociatedData(t *testing.T) {
	key := &[KeySize]byte{8}
	s := Seal(key, KindAccount, nil, []byte("x"))
	if _, err := Open(key, KindAccount, []byte{}, s); err != nil {
		t.Fatalf("empty vs nil: %v", err)
	}
	if _, err := Open(key, KindAccount, []byte{0}, s); !errors.Is(err, ErrAuth) {
		t.Fatalf("one zero byte of associated data: %v", err)
	}
}

func TestOpenRejectsFormat(t *testing.T) {
	key := &[KeySize]byte{9}
	s := Seal(key, KindInboundGroup, []byte("ad"), []byte("secret"))
	orig := bytes.Clone(s)
	for n := range headerLen + 24 + 16 {
		pt, err := Open(key, KindInboundGroup, []byte("ad"), s[:n])
		if !errors.Is(err, ErrFormat) || pt != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
	}
	for _, v := range []byte{0, 2, 0xff} {
		c := bytes.Clone(s)
		c[0] = v
		if pt, err := Open(key, KindInboundGroup, []byte("ad"), c); !errors.Is(err, ErrFormat) || pt != nil {
			t.Fatalf("envelope version %d: %v", v, err)
		}
	}
	// A blob relabelled as another kind fails authentication either way.
	c := bytes.Clone(s)
	c[1] = byte(KindOutboundGroup)
	for _, kind := range []Kind{KindInboundGroup, KindOutboundGroup} {
		if pt, err := Open(key, kind, []byte("ad"), c); !errors.Is(err, ErrAuth) || pt != nil {
			t.Fatalf("relabelled blob opened as kind %d: %v", kind, err)
		}
	}
	if !bytes.Equal(s, orig) {
		t.Fatal("Open modified its input")
	}
}

func TestOpenSizeLimit(t *testing.T) {
	key := &[KeySize]byte{10}
	atLimit := Seal(key, KindAccount, nil, make([]byte, MaxSize-headerLen-24-16))
	if len(atLimit) != MaxSize {
		t.Fatalf("sealed length %d, want %d", len(atLimit), MaxSize)
	}
	if _, err := Open(key, KindAccount, nil, atLimit); err != nil {
		t.Fatalf("blob of exactly MaxSize: %v", err)
	}
	over := Seal(key, KindAccount, nil, make([]byte, MaxSize-headerLen-24-16+1))
	if pt, err := Open(key, KindAccount, nil, over); !errors.Is(err, ErrFormat) || pt != nil {
		t.Fatalf("blob of MaxSize+1: %v", err)
	}
}

// sealedVector is one blob of testdata/sealed_v1.txt.
type sealedVector struct {
	kind      Kind
	ad        []byte
	plaintext []byte
	sealed    []byte
}

// loadSealed reads testdata/sealed_v1.txt: the pickle key, then the blobs.
func loadSealed(t testing.TB) (*[KeySize]byte, []sealedVector) {
	t.Helper()
	data, err := os.ReadFile("testdata/sealed_v1.txt")
	if err != nil {
		t.Fatal(err)
	}
	var key *[KeySize]byte
	var out []sealedVector
	for _, rec := range strings.Split(string(data), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(rec, "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("testdata/sealed_v1.txt: malformed line %q", line)
			}
			fields[k] = strings.TrimSpace(v)
		}
		mustHex := func(name string) []byte {
			b, err := hex.DecodeString(fields[name])
			if err != nil {
				t.Fatalf("testdata/sealed_v1.txt: %s: %v", name, err)
			}
			return b
		}
		switch {
		case len(fields) == 0:
		case fields["key"] != "":
			key = (*[KeySize]byte)(mustHex("key"))
		default:
			kind, err := strconv.ParseUint(fields["kind"], 10, 8)
			ad, err2 := strconv.Unquote(fields["ad"])
			if err != nil || err2 != nil {
				t.Fatalf("testdata/sealed_v1.txt: bad record %v", fields)
			}
			out = append(out, sealedVector{Kind(kind), []byte(ad), mustHex("plaintext"), mustHex("sealed")})
		}
	}
	if key == nil || len(out) == 0 {
		t.Fatal("testdata/sealed_v1.txt: no key or no blobs")
	}
	return key, out
}

// TestOpenSealedV1 opens blobs sealed by an earlier build: the envelope
// format must not change under existing stores.
func TestOpenSealedV1(t *testing.T) {
	key, vectors := loadSealed(t)
	for i, v := range vectors {
		pt, err := Open(key, v.kind, v.ad, v.sealed)
		if err != nil || !bytes.Equal(pt, v.plaintext) {
			t.Errorf("blob %d (kind %d, ad %q): %x, %v", i, v.kind, v.ad, pt, err)
		}
		other := v.kind%4 + 1
		if _, err := Open(key, other, v.ad, v.sealed); !errors.Is(err, ErrAuth) {
			t.Errorf("blob %d opened as kind %d: %v", i, other, err)
		}
		if _, err := Open(key, v.kind, append(bytes.Clone(v.ad), '/'), v.sealed); !errors.Is(err, ErrAuth) {
			t.Errorf("blob %d opened with other associated data: %v", i, err)
		}
	}
}

// FuzzPickleOpen checks that only the exact sealed bytes open, and only
// under the kind and associated data they were sealed with; every failure is
// ErrFormat or ErrAuth with no plaintext. The sealed blobs come from
// testdata/sealed_v1.txt, since Seal's nonces differ in every fuzz worker.
func FuzzPickleOpen(f *testing.F) {
	key, vectors := loadSealed(f)
	bindings := map[string]bool{}
	for _, v := range vectors {
		if bindings[fmt.Sprint(v.kind, v.ad)] {
			f.Fatal("testdata/sealed_v1.txt: two blobs share a kind and associated data")
		}
		bindings[fmt.Sprint(v.kind, v.ad)] = true
		b := v.sealed
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
		for _, at := range []int{0, 1, 2, 25, 26, len(b) - 16, len(b) - 1} {
			c := bytes.Clone(b)
			c[at] ^= 0x01
			f.Add(c)
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 42))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, v := range vectors {
			pt, err := Open(key, v.kind, v.ad, in)
			if err != nil {
				if pt != nil || !(errors.Is(err, ErrFormat) || errors.Is(err, ErrAuth)) {
					t.Fatalf("Open = %x, %v", pt, err)
				}
				continue
			}
			if !bytes.Equal(in, v.sealed) {
				t.Fatalf("%x opened as kind %d with %q but was never sealed so", in, v.kind, v.ad)
			}
			if !bytes.Equal(pt, v.plaintext) {
				t.Fatalf("opened to %x, want %x", pt, v.plaintext)
			}
		}
	})
}
