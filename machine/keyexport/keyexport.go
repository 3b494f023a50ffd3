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
// Files written by Element (matrix-js-sdk / matrix-react-sdk) and by
// matrix-rust-sdk are read, including Element's published test vectors, whose
// initialization vectors depend on AES-CTR counting with WebCrypto's 64-bit
// counter; files written here are read by both.
package keyexport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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
	mac := hmac.New(sha256.New, k.mac[:])
	mac.Write(payload[:headerSize+len(sessions)])
	mac.Sum(payload[:headerSize+len(sessions)])
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
