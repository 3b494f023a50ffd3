package megolm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzSessionKeys feeds arbitrary bytes to both key parsers: nothing may
// panic, and a parsed key must export back to the bytes it came from.
func FuzzSessionKeys(f *testing.F) {
	lv := loadLibolmVectors(f)
	for _, k := range []string{"session_key_0", "session_key_4", "export_0", "export_3"} {
		b := mustB64(f, lv.v[k])
		f.Add(b)
		f.Add(b[:len(b)-1])
		flipped := bytes.Clone(b)
		flipped[len(b)/2] ^= 1
		f.Add(flipped)
	}
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := NewInboundGroupSession(b); err == nil {
			if len(b) != sessionKeySize || !s.SigningKeyVerified() {
				t.Fatalf("accepted a %d-byte session key", len(b))
			}
			exp := s.ExportAtFirstKnownIndex()
			if exp[0] != exportedKeyVersion || !bytes.Equal(exp[1:], b[1:exportedKeySize]) {
				t.Fatal("session key does not export to its own contents")
			}
		} else if s != nil {
			t.Fatal("session returned with an error")
		}
		if s, err := ImportInboundGroupSession(b); err == nil {
			if !bytes.Equal(s.ExportAtFirstKnownIndex(), b) || s.SigningKeyVerified() {
				t.Fatal("exported key does not round-trip")
			}
		} else if s != nil {
			t.Fatal("session returned with an error")
		}
	})
}

func TestNewInboundGroupSessionRejects(t *testing.T) {
	out, _ := newTestPair(t, 7)
	key := out.SessionKey()

	bad := bytes.Clone(key)
	bad[len(bad)-1] ^= 1
	if _, err := NewInboundGroupSession(bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	bad = bytes.Clone(key)
	bad[20] ^= 1 // a ratchet byte: the signature no longer covers it
	if _, err := NewInboundGroupSession(bad); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("altered ratchet: %v", err)
	}
	for n := range len(key) {
		if _, err := NewInboundGroupSession(key[:n]); !errors.Is(err, ErrInvalidSessionKey) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if _, err := NewInboundGroupSession(append(bytes.Clone(key), 0)); !errors.Is(err, ErrInvalidSessionKey) {
		t.Fatalf("trailing byte: %v", err)
	}

	exp := bytes.Clone(key[:165])
	exp[0] = 1
	if _, err := NewInboundGroupSession(exp); !errors.Is(err, ErrInvalidSessionKey) {
		t.Fatalf("exported key given as a session key: %v", err)
	}
	if _, err := ImportInboundGroupSession(key); !errors.Is(err, ErrInvalidSessionKey) {
		t.Fatalf("session key given as an exported key: %v", err)
	}
	for n := range 165 {
		if _, err := ImportInboundGroupSession(exp[:n]); !errors.Is(err, ErrInvalidSessionKey) {
			t.Fatalf("exported key truncated to %d bytes: %v", n, err)
		}
	}
}

func TestSessionKeyLayout(t *testing.T) {
	s, err := NewOutboundGroupSession(testRand(5))
	if err != nil {
		t.Fatal(err)
	}
	s.ratchet.advanceTo(0x01020304)
	key := s.SessionKey()
	if len(key) != 229 || key[0] != 2 || binary.BigEndian.Uint32(key[1:5]) != 0x01020304 {
		t.Fatalf("session key header % x, %d bytes", key[:5], len(key))
	}
	if !bytes.Equal(key[5:133], s.ratchet.data[:]) {
		t.Fatal("ratchet bytes")
	}
	pub := s.SigningKey().Array()
	if !bytes.Equal(key[133:165], pub[:]) {
		t.Fatal("public key bytes")
	}
	if !s.SigningKey().Verify(key[:165], key[165:]) {
		t.Fatal("signature over the first 165 bytes does not verify")
	}
}
