package megolm

import (
	"encoding/binary"
	"fmt"

	"github.com/xolm/xolm/internal/keys"
)

// The two formats that carry a ratchet between devices (PROTOCOL.md §3.3).
// Both are raw bytes here; Matrix events carry them in unpadded base64.
//
// The session-sharing key, sent by the session's creator in m.room_key, is
// signed by the session's Ed25519 key:
//
//	0x02 ‖ u32_BE(index) ‖ R(128) ‖ Ed25519 public key(32) ‖ signature(64)
//
// The exported key, forwarded in m.forwarded_room_key, key backups and key
// export files, is not signed:
//
//	0x01 ‖ u32_BE(index) ‖ R(128) ‖ Ed25519 public key(32)
const (
	sessionKeyVersion  = 2
	exportedKeyVersion = 1

	exportedKeySize = 1 + 4 + ratchetSize + keys.KeySize   // 165
	sessionKeySize  = exportedKeySize + keys.SignatureSize // 229
)

// encodeExportedKey returns the unsigned export of r.
func encodeExportedKey(r *ratchet, signer keys.Ed25519PublicKey) []byte {
	b := make([]byte, 0, exportedKeySize)
	b = append(b, exportedKeyVersion)
	b = r.appendCounterAndData(b)
	pub := signer.Array()
	return append(b, pub[:]...)
}

// encodeSessionKey returns the signed sharing key of r.
func encodeSessionKey(r *ratchet, signer *keys.Ed25519SecretKey) []byte {
	b := make([]byte, 0, sessionKeySize)
	b = append(b, sessionKeyVersion)
	b = r.appendCounterAndData(b)
	pub := signer.PublicKey().Array()
	b = append(b, pub[:]...)
	return append(b, signer.Sign(b)...)
}

// decodeSessionKey parses a signed sharing key and verifies its signature.
func decodeSessionKey(b []byte) (ratchet, keys.Ed25519PublicKey, error) {
	if err := checkKeyFormat(b, sessionKeyVersion, sessionKeySize); err != nil {
		return ratchet{}, keys.Ed25519PublicKey{}, err
	}
	r, pub := decodeKeyBody(b[:exportedKeySize])
	if !pub.Verify(b[:exportedKeySize], b[exportedKeySize:]) {
		r.clear()
		return ratchet{}, keys.Ed25519PublicKey{}, ErrBadSignature
	}
	return r, pub, nil
}

// decodeExportedKey parses an exported (unsigned) key.
func decodeExportedKey(b []byte) (ratchet, keys.Ed25519PublicKey, error) {
	if err := checkKeyFormat(b, exportedKeyVersion, exportedKeySize); err != nil {
		return ratchet{}, keys.Ed25519PublicKey{}, err
	}
	r, pub := decodeKeyBody(b)
	return r, pub, nil
}

// checkKeyFormat checks the version byte and the exact length. The version is
// checked first, so that a key of the other kind is named as such.
func checkKeyFormat(b []byte, version byte, size int) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidSessionKey)
	}
	if b[0] != version {
		hint := ""
		switch b[0] {
		case exportedKeyVersion:
			hint = " (an exported key: import it instead)"
		case sessionKeyVersion:
			hint = " (a signed session key: create a session from it instead)"
		}
		return fmt.Errorf("%w: version %d, want %d%s", ErrInvalidSessionKey, b[0], version, hint)
	}
	if len(b) != size {
		return fmt.Errorf("%w: %d bytes, want %d", ErrInvalidSessionKey, len(b), size)
	}
	return nil
}

// decodeKeyBody reads index, ratchet and public key from the first
// exportedKeySize bytes of a key whose format was checked.
func decodeKeyBody(b []byte) (ratchet, keys.Ed25519PublicKey) {
	r := newRatchet((*[ratchetSize]byte)(b[5:5+ratchetSize]), binary.BigEndian.Uint32(b[1:5]))
	pub, err := keys.NewEd25519PublicKeyFromBytes(b[5+ratchetSize : exportedKeySize])
	if err != nil {
		panic("megolm: internal error: " + err.Error()) // the length was checked
	}
	return r, pub
}
