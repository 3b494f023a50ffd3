package keyexport

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// fuzzMaxRounds keeps each fuzzed decryption fast; inputs asking for more
// rounds are skipped, not decrypted with fewer.
const fuzzMaxRounds = 2000

// FuzzDecrypt checks, for any file and passphrase: no panic; an error is one
// of the package's, with no output; and a file that decrypts is one whose
// MAC verifies, so it decrypts again to the same plaintext, whose length is
// fixed by the payload's.
func FuzzDecrypt(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.file, v.passphrase)
		payload, err := dearmor(v.file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(armor(payload), v.passphrase)
		for _, i := range []int{0, 1, 1 + saltSize, headerSize - 1, headerSize, len(payload) - 1} {
			p := bytes.Clone(payload)
			p[i] ^= 0x01
			f.Add(armor(p), v.passphrase)
		}
		f.Add(armor(payload[:len(payload)-1]), v.passphrase)
		f.Add(armor(payload[:headerSize+macSize-1]), v.passphrase)
	}
	small, err := Encrypt([]byte(`[]`), "p", 3, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small, "p")
	f.Add([]byte(armorBegin+"\n"+armorEnd), "")
	f.Add([]byte(""), "")

	f.Fuzz(func(t *testing.T, file []byte, passphrase string) {
		if payload, err := dearmor(file); err == nil && len(payload) >= headerSize {
			if binary.BigEndian.Uint32(payload[1+saltSize+ivSize:]) > fuzzMaxRounds {
				t.Skip("too many rounds to fuzz quickly")
			}
		}
		got, err := Decrypt(file, passphrase)
		if err != nil {
			if got != nil {
				t.Fatalf("output with error %v", err)
			}
			if !errors.Is(err, ErrInvalidFile) && !errors.Is(err, ErrBadMAC) && !errors.Is(err, ErrInvalidRounds) {
				t.Fatalf("error outside the package's: %v", err)
			}
			return
		}
		payload, err := dearmor(file)
		if err != nil {
			t.Fatalf("decrypted a file that does not dearmor: %v", err)
		}
		if len(got) != len(payload)-headerSize-macSize {
			t.Fatalf("%d bytes of plaintext from a %d-byte payload", len(got), len(payload))
		}
		again, err := Decrypt(armor(payload), passphrase)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-armored file: %v", err)
		}
	})
}

// FuzzUnmarshalSessions checks that any accepted session list marshals back
// and reads again to the same sessions, and that errors come without output.
func FuzzUnmarshalSessions(f *testing.F) {
	for _, v := range loadVectors(f) {
		if v.plaintext == nil {
			plaintext, err := Decrypt(v.file, v.passphrase)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(plaintext)
		}
	}
	s, _ := newSession(f, "!r:x")
	s.SharedHistory = true
	s.ForwardingCurve25519KeyChain = append(s.ForwardingCurve25519KeyChain, s.SenderKey)
	data, err := MarshalSessions([]ExportedSession{s, s})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	for _, seed := range []string{`[]`, `[null]`, `[{}]`, `{}`, `[{"algorithm":"m.megolm.v1.aes-sha2"}]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sessions, err := UnmarshalSessions(data)
		if err != nil {
			if sessions != nil {
				t.Fatalf("sessions with error %v", err)
			}
			return
		}
		out, err := MarshalSessions(sessions)
		if err != nil {
			t.Fatalf("accepted sessions do not marshal: %v", err)
		}
		again, err := UnmarshalSessions(out)
		if err != nil || !reflect.DeepEqual(again, sessions) {
			t.Fatalf("marshal → unmarshal changed the sessions: %v", err)
		}
	})
}
