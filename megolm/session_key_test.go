package megolm

import (
	"bytes"
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
