// Package keyexport reads and writes Matrix key-export files: the
// passphrase-protected "MEGOLM SESSION DATA" files that clients exchange to
// move room keys between devices (spec "Key exports"; PROTOCOL.md §5).
//
// [Encrypt] and [Decrypt] handle the file format: PBKDF2-HMAC-SHA-512 turns
// the passphrase into an AES-256 key and an HMAC-SHA-256 key, the sessions
// JSON is encrypted with AES-CTR, and the result is authenticated, base64
// encoded and wrapped in BEGIN/END lines. [MarshalSessions] and
// [UnmarshalSessions] handle the JSON array of [ExportedSession] inside.
//
// Most applications export and import keys through the crypto state machine,
// which uses this package; it is exported for tools that handle the files
// themselves.
//
// # Compatibility
//
// Files written by Element Web (with WebCrypto) and by matrix-rust-sdk are
// read, including Element's published test vectors, one of which only
// decrypts with AES-CTR counting as WebCrypto does with a 64-bit counter;
// files written here are read by both.
//
// # Limits
//
// A file states its own PBKDF2 round count, so [MaxRounds] bounds the work a
// file can demand before its MAC is checked, and [MaxFileSize] bounds the
// memory.
package keyexport

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/xolm/xolm/internal/b64"
)

// DefaultRounds is the PBKDF2 round count to encrypt with when the caller has
// no reason to choose another: Element's, five times the spec's minimum
// recommendation of 100,000.
const DefaultRounds = 500_000

// MaxRounds bounds the PBKDF2 round count of a file. The count comes from the
// file, so without a bound a crafted file could keep Decrypt busy for hours
// before its MAC can even be checked. 10,000,000 rounds, twenty times
// Element's 500,000, take about five seconds on one desktop core (measured:
// 0.47 µs per round) and well under a minute on a phone.
const MaxRounds = 10_000_000

// MaxFileSize bounds the armored file Decrypt reads, and so its memory: the
// file, its decoded form and the plaintext are held at once. An exported
// session takes about 600 armored bytes, so 512 MiB holds some 900,000
// sessions, more than years of heavy use produce.
const MaxFileSize = 512 << 20

// The binary layout inside the armor (spec "Key exports", step 4):
// version(1) ‖ salt(16) ‖ iv(16) ‖ rounds(4, big-endian) ‖ ciphertext ‖ mac(32).
const (
	formatVersion = 1
	saltSize      = 16
	ivSize        = 16
	headerSize    = 1 + saltSize + ivSize + 4
	macSize       = sha256.Size
)

// Errors. Every error the package returns matches one of these with
// errors.Is.
var (
	// ErrInvalidFile reports data that is not a key-export file: missing
	// BEGIN/END lines, invalid base64, too short, or an unknown version
	// (*VersionError).
	ErrInvalidFile = errors.New("keyexport: not a valid key export file")
	// ErrBadMAC reports a file whose authentication failed: a wrong
	// passphrase or altered contents. Nothing more specific is said.
	ErrBadMAC = errors.New("keyexport: message authentication failed")
	// ErrInvalidRounds reports a PBKDF2 round count of 0, in a file or given
	// to Encrypt, or one above MaxRounds (*LimitError).
	ErrInvalidRounds = errors.New("keyexport: invalid PBKDF2 round count")
	// ErrTooLarge reports a file over MaxFileSize, read or to be written
	// (*LimitError).
	ErrTooLarge = errors.New("keyexport: too large")
)

// VersionError reports a file in a format version this package does not read.
// It matches ErrInvalidFile.
type VersionError struct {
	Version byte
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("keyexport: unsupported export format version %d (want %d)", e.Version, formatVersion)
}

// Is makes errors.Is(err, ErrInvalidFile) true.
func (e *VersionError) Is(target error) bool { return target == ErrInvalidFile }

// LimitError reports a quantity over one of the package's limits: "rounds"
// ([MaxRounds]; matches ErrInvalidRounds) or "size" (of the armored file in
// bytes, [MaxFileSize]; matches ErrTooLarge).
type LimitError struct {
	Limit string
	Value uint64
	Max   uint64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("keyexport: %s %d exceeds the limit of %d", e.Limit, e.Value, e.Max)
}

// Is makes errors.Is match ErrInvalidRounds or ErrTooLarge, by limit.
func (e *LimitError) Is(target error) bool {
	return e.Limit == "rounds" && target == ErrInvalidRounds || e.Limit == "size" && target == ErrTooLarge
}

func checkRounds(rounds uint32) error {
	if rounds == 0 {
		return fmt.Errorf("%w: 0 rounds", ErrInvalidRounds)
	}
	if rounds > MaxRounds {
		return &LimitError{Limit: "rounds", Value: uint64(rounds), Max: MaxRounds}
	}
	return nil
}

// Encrypt returns the key-export file protecting sessions, the JSON array of
// exported sessions (see [MarshalSessions]), with passphrase. rounds is the
// PBKDF2 round count, from 1 to MaxRounds; use DefaultRounds unless there is
// reason not to. The salt and initialization vector are read from rand.
//
// The file is standard padded base64 in lines of 96 characters between the
// BEGIN and END lines, each line ending in "\n".
func Encrypt(sessions []byte, passphrase string, rounds uint32, rand io.Reader) ([]byte, error) {
	if err := checkRounds(rounds); err != nil {
		return nil, fmt.Errorf("keyexport: encrypt: %w", err)
	}
	if n := armoredSize(headerSize + len(sessions) + macSize); n > MaxFileSize {
		return nil, fmt.Errorf("keyexport: encrypt: %w", &LimitError{Limit: "size", Value: uint64(n), Max: MaxFileSize})
	}
	payload := make([]byte, headerSize+len(sessions)+macSize)
	payload[0] = formatVersion
	salt := payload[1 : 1+saltSize]
	iv := (*[ivSize]byte)(payload[1+saltSize : 1+saltSize+ivSize])
	if _, err := io.ReadFull(rand, payload[1:1+saltSize+ivSize]); err != nil {
		return nil, fmt.Errorf("keyexport: encrypt: reading randomness: %w", err)
	}
	// Bit 63 of the counter block is cleared, as the spec requires, so that
	// the low 64 bits cannot overflow within any file: implementations that
	// carry into the high half and those that wrap agree on every block.
	iv[8] &^= 0x80
	binary.BigEndian.PutUint32(payload[1+saltSize+ivSize:headerSize], rounds)

	k, err := deriveKeys(passphrase, salt, rounds)
	if err != nil {
		return nil, fmt.Errorf("keyexport: encrypt: %w", err)
	}
	defer k.clear()
	ciphertext := payload[headerSize : headerSize+len(sessions)]
	xorKeyStream(&k.aes, iv, ciphertext, sessions)
	authenticated := payload[:headerSize+len(sessions)]
	mac := hmac.New(sha256.New, k.mac[:])
	mac.Write(authenticated)
	copy(payload[len(authenticated):], mac.Sum(nil))
	return armor(payload), nil
}

// Decrypt returns the JSON array of exported sessions inside a key-export
// file, which must start with the BEGIN line and end with the END line
// (surrounding whitespace is ignored). Between them, base64 with or without
// padding is read, broken into lines anywhere; spaces, tabs and carriage
// returns are ignored too.
//
// The PBKDF2 round count comes from the file and must be between 1 and
// MaxRounds. The MAC is checked, in constant time, before anything is
// decrypted; a wrong passphrase and an altered file both give ErrBadMAC.
// The plaintext returned is the caller's to wipe.
func Decrypt(file []byte, passphrase string) ([]byte, error) {
	if n := uint64(len(file)); n > MaxFileSize {
		return nil, fmt.Errorf("keyexport: decrypt: %w", &LimitError{Limit: "size", Value: n, Max: MaxFileSize})
	}
	payload, err := dearmor(file)
	if err != nil {
		return nil, fmt.Errorf("keyexport: decrypt: %w", err)
	}
	if len(payload) < headerSize+macSize {
		return nil, fmt.Errorf("keyexport: decrypt: %w: %d bytes is too short", ErrInvalidFile, len(payload))
	}
	if payload[0] != formatVersion {
		return nil, fmt.Errorf("keyexport: decrypt: %w", &VersionError{Version: payload[0]})
	}
	salt := payload[1 : 1+saltSize]
	iv := (*[ivSize]byte)(payload[1+saltSize : 1+saltSize+ivSize])
	rounds := binary.BigEndian.Uint32(payload[1+saltSize+ivSize : headerSize])
	if err := checkRounds(rounds); err != nil {
		return nil, fmt.Errorf("keyexport: decrypt: %w", err)
	}
	authenticated, tag := payload[:len(payload)-macSize], payload[len(payload)-macSize:]

	k, err := deriveKeys(passphrase, salt, rounds)
	if err != nil {
		return nil, fmt.Errorf("keyexport: decrypt: %w", err)
	}
	defer k.clear()
	mac := hmac.New(sha256.New, k.mac[:])
	mac.Write(authenticated)
	if !hmac.Equal(mac.Sum(nil), tag) {
		return nil, ErrBadMAC
	}
	ciphertext := authenticated[headerSize:]
	plaintext := make([]byte, len(ciphertext))
	xorKeyStream(&k.aes, iv, plaintext, ciphertext)
	return plaintext, nil
}

// The lines around the base64 payload (spec "Key exports", step 6).
const (
	armorBegin = "-----BEGIN MEGOLM SESSION DATA-----"
	armorEnd   = "-----END MEGOLM SESSION DATA-----"
)

// lineLength is the length of the base64 lines Encrypt writes, as Element
// writes them. Readers accept any.
const lineLength = 96

// armor wraps payload as a key-export file. The base64 is padded: Element
// writes it so, every known reader accepts it (matrix-rust-sdk decodes with
// or without padding, browsers' atob likewise), and so do generic base64
// tools.
func armor(payload []byte) []byte {
	encoded := base64.StdEncoding.AppendEncode(nil, payload)
	out := make([]byte, 0, armoredSize(len(payload)))
	out = append(out, armorBegin...)
	out = append(out, '\n')
	for len(encoded) > 0 {
		n := min(lineLength, len(encoded))
		out = append(out, encoded[:n]...)
		out = append(out, '\n')
		encoded = encoded[n:]
	}
	out = append(out, armorEnd...)
	return append(out, '\n')
}

// armoredSize is the length of armor's result for a payload of n bytes.
func armoredSize(n int) int {
	encoded := base64.StdEncoding.EncodedLen(n)
	lines := (encoded + lineLength - 1) / lineLength
	return len(armorBegin) + 1 + encoded + lines + len(armorEnd) + 1
}

// dearmor returns the payload of a key-export file: the base64 between the
// BEGIN and END lines, padded or not, with any ASCII whitespace in it ignored.
func dearmor(file []byte) ([]byte, error) {
	const space = " \t\r\n"
	body, ok := bytes.CutPrefix(bytes.Trim(file, space), []byte(armorBegin))
	if !ok {
		return nil, fmt.Errorf("%w: it does not start with %q", ErrInvalidFile, armorBegin)
	}
	body, ok = bytes.CutSuffix(body, []byte(armorEnd))
	if !ok {
		return nil, fmt.Errorf("%w: it does not end with %q", ErrInvalidFile, armorEnd)
	}
	compact := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			compact = append(compact, c)
		}
	}
	payload, err := b64.DecodeBytes(compact)
	if err != nil {
		return nil, fmt.Errorf("%w: invalid base64", ErrInvalidFile)
	}
	return payload, nil
}

// fileKeys are the two keys PBKDF2 derives from the passphrase (spec "Key
// exports", step 2).
type fileKeys struct {
	aes [32]byte // K, the AES-256-CTR key: the first 256 bits
	mac [32]byte // K', the HMAC-SHA-256 key: the last 256 bits
}

// deriveKeys computes PBKDF2-HMAC-SHA-512(passphrase, salt, rounds, 512 bits)
// and splits it into the two keys. rounds has been checked against MaxRounds.
func deriveKeys(passphrase string, salt []byte, rounds uint32) (*fileKeys, error) {
	dk, err := pbkdf2.Key(sha512.New, passphrase, salt, int(rounds), 64)
	if err != nil {
		return nil, fmt.Errorf("deriving keys: %w", err)
	}
	k := new(fileKeys)
	copy(k.aes[:], dk[:32])
	copy(k.mac[:], dk[32:])
	clear(dk)
	return k, nil
}

// clear overwrites the keys (best effort: Go may have copied them).
func (k *fileKeys) clear() {
	clear(k.aes[:])
	clear(k.mac[:])
}

// xorKeyStream XORs src with the AES-256-CTR key stream of key and the initial
// counter block iv into dst, counting as WebCrypto's AES-CTR does with a
// counter length of 64 bits (the parameters Element exports with): only the
// low 64 bits of the counter block count, and they wrap from 2^64-1 to 0 while
// the high 64 bits stay as they are.
//
// crypto/cipher's CTR counts with the whole 128-bit block instead, carrying
// into the high half. The two agree on every block until the low half
// overflows, so the stream is cut there: crypto/cipher serves the blocks
// before, and a second stream restarted at a low half of zero those after.
// A slice holds far fewer than 2^64 blocks, so the low half overflows at most
// once. Files whose IV has bit 63 clear, as the spec asks, never overflow;
// Element's published test vectors include one that does.
func xorKeyStream(key *[32]byte, iv *[ivSize]byte, dst, src []byte) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("keyexport: internal error: " + err.Error())
	}
	split := len(src)
	blocks := (uint64(len(src)) + aes.BlockSize - 1) / aes.BlockSize
	if low := binary.BigEndian.Uint64(iv[8:]); low != 0 {
		if beforeWrap := -low; beforeWrap < blocks { // 2^64 - low counter values are left
			split = int(beforeWrap) * aes.BlockSize
		}
	}
	cipher.NewCTR(block, iv[:]).XORKeyStream(dst[:split], src[:split])
	if split < len(src) {
		var wrapped [ivSize]byte
		copy(wrapped[:8], iv[:8])
		cipher.NewCTR(block, wrapped[:]).XORKeyStream(dst[split:], src[split:])
	}
}
