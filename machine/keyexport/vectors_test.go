package keyexport

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
)

// vector is one published key-export file from testdata/vectors.txt.
type vector struct {
	source     string
	passphrase string
	plaintext  *string // nil: a JSON array of exported sessions
	file       []byte
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out    []vector
		cur    vector
		inFile bool
	)
	unquote := func(s string) string {
		u, err := strconv.Unquote(s)
		if err != nil {
			t.Fatalf("vectors.txt: %q: %v", s, err)
		}
		return u
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inFile:
			cur.file = append(append(cur.file, line...), '\n')
			if line == armorEnd {
				out = append(out, cur)
				cur, inFile = vector{}, false
			}
		case line == armorBegin:
			cur.file = append([]byte(line), '\n')
			inFile = true
		case strings.HasPrefix(line, "source: "):
			cur.source = strings.TrimPrefix(line, "source: ")
		case strings.HasPrefix(line, "passphrase: "):
			cur.passphrase = unquote(strings.TrimPrefix(line, "passphrase: "))
		case strings.HasPrefix(line, "plaintext: "):
			p := unquote(strings.TrimPrefix(line, "plaintext: "))
			cur.plaintext = &p
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 5 {
		t.Fatalf("vectors.txt holds %d vectors, want 5", len(out))
	}
	return out
}

// TestPublishedVectors decrypts every published file: Element's to their
// plaintexts, matrix-rust-sdk's to a valid session list whose session key is
// in the exported format (version byte 0x01).
func TestPublishedVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.source, func(t *testing.T) {
			t.Parallel()
			got, err := Decrypt(v.file, v.passphrase)
			if err != nil {
				t.Fatal(err)
			}
			if v.plaintext != nil {
				if string(got) != *v.plaintext {
					t.Fatalf("plaintext %q, want %q", got, *v.plaintext)
				}
			} else {
				sessions, err := UnmarshalSessions(got)
				if err != nil {
					t.Fatal(err)
				}
				if len(sessions) != 1 || sessions[0].SessionKey[0] != 0x01 || sessions[0].RoomID != "!test:localhost" {
					t.Fatalf("sessions %+v", sessions)
				}
			}
			if _, err := Decrypt(v.file, v.passphrase+"x"); err != ErrBadMAC {
				t.Fatalf("wrong passphrase: %v, want ErrBadMAC", err)
			}
		})
	}
}

// TestReproduceElementVectors encrypts the plaintexts of the Element vectors
// whose IV already has bit 63 clear, with their salt and IV as randomness,
// and gets their payloads byte for byte.
func TestReproduceElementVectors(t *testing.T) {
	reproduced := 0
	for _, v := range loadVectors(t) {
		want, err := dearmor(v.file)
		if err != nil {
			t.Fatal(err)
		}
		if v.plaintext == nil || want[1+saltSize+8]&0x80 != 0 {
			continue
		}
		rounds := binary.BigEndian.Uint32(want[1+saltSize+ivSize:])
		file, err := Encrypt([]byte(*v.plaintext), v.passphrase, rounds, bytes.NewReader(want[1:1+saltSize+ivSize]))
		if err != nil {
			t.Fatal(err)
		}
		got, err := dearmor(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", v.source, got, want)
		}
		reproduced++
	}
	if reproduced != 2 {
		t.Fatalf("reproduced %d vectors, want 2", reproduced)
	}
}

// TestWrapVectorNeedsWebCryptoCounter shows what the 64-bit counter is for:
// Element's fourth vector (IV all 0xff) decrypts with it, and crypto/cipher's
// CTR, which carries into the high half of the counter block, gets every
// block after the first wrong. On the other vectors the two agree.
func TestWrapVectorNeedsWebCryptoCounter(t *testing.T) {
	for _, v := range loadVectors(t) {
		if v.plaintext == nil {
			continue
		}
		payload, err := dearmor(v.file)
		if err != nil {
			t.Fatal(err)
		}
		iv := (*[ivSize]byte)(payload[1+saltSize : 1+saltSize+ivSize])
		rounds := binary.BigEndian.Uint32(payload[1+saltSize+ivSize:])
		k, err := deriveKeys(v.passphrase, payload[1:1+saltSize], rounds)
		if err != nil {
			t.Fatal(err)
		}
		ciphertext := payload[headerSize : len(payload)-macSize]

		ours := make([]byte, len(ciphertext))
		xorKeyStream(&k.aes, iv, ours, ciphertext)
		block, err := aes.NewCipher(k.aes[:])
		if err != nil {
			t.Fatal(err)
		}
		carrying := make([]byte, len(ciphertext))
		cipher.NewCTR(block, iv[:]).XORKeyStream(carrying, ciphertext)

		if string(ours) != *v.plaintext {
			t.Fatalf("%s: 64-bit counter gives %q", v.source, ours)
		}
		wraps := *iv == [ivSize]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		switch {
		case wraps && (carrying[0] != ours[0] || bytes.Equal(carrying[aes.BlockSize:], ours[aes.BlockSize:])):
			t.Fatalf("%s: crypto/cipher CTR gives %q; want the first block right and the rest wrong", v.source, carrying)
		case !wraps && !bytes.Equal(carrying, ours):
			t.Fatalf("%s: the counters disagree without a wrap", v.source)
		}
	}
}

// TestRearmoredVectors reads the vectors' payloads in other armor layouts:
// this package's 96-column lines, unpadded base64, one line, CRLF, stray
// spaces and surrounding whitespace.
func TestRearmoredVectors(t *testing.T) {
	v := loadVectors(t)[2]
	payload, err := dearmor(v.file)
	if err != nil {
		t.Fatal(err)
	}
	ours := armor(payload)
	body := string(ours[len(armorBegin)+1 : len(ours)-len(armorEnd)-1])
	flat := strings.ReplaceAll(body, "\n", "")
	layouts := map[string]string{
		"ours":       string(ours),
		"unpadded":   armorBegin + "\n" + strings.TrimRight(flat, "=") + "\n" + armorEnd,
		"one line":   armorBegin + flat + armorEnd,
		"crlf":       strings.ReplaceAll(string(ours), "\n", "\r\n"),
		"spaces":     armorBegin + " \t" + strings.Join(strings.Split(flat, ""), " ") + "\t\n" + armorEnd,
		"surrounded": "\n\n  \t" + string(ours) + "\r\n \n",
	}
	for name, file := range layouts {
		got, err := Decrypt([]byte(file), v.passphrase)
		if err != nil || string(got) != *v.plaintext {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}
