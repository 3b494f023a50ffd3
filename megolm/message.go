package megolm

import (
	"fmt"

	"github.com/xolm/xolm/internal/cipher"
	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/wire"
)

// A Megolm message (PROTOCOL.md §3.2) is
//
//	0x03 ‖ 0x08 varint(index) ‖ 0x12 varint(len) ciphertext ‖ MAC(8) ‖ signature(64)
//
// The ciphertext is AES-256-CBC under keys derived from the ratchet at index;
// the MAC is HMAC-SHA-256 over everything before it, truncated to 8 bytes; the
// Ed25519 signature, by the session's signing key, covers everything before
// it, the MAC included.

// sealMessage encrypts plaintext under the ratchet's current keys and returns
// the complete, MACed and signed message. It does not advance the ratchet.
func sealMessage(r *ratchet, signer *keys.Ed25519SecretKey, plaintext []byte) []byte {
	k := r.keys()
	defer k.Clear()
	msg := wire.EncodeMegolmMessage(r.counter, k.Encrypt(nil, plaintext))
	n := len(msg)
	mac := k.MAC(wire.MegolmMACCovered(msg))
	copy(msg[n-wire.SignatureLength-cipher.MACLength:], mac[:cipher.MACLength])
	copy(msg[n-wire.SignatureLength:], signer.Sign(wire.MegolmSignatureCovered(msg)))
	return msg
}

// parseMessage decodes a message. Any failure is an ErrInvalidMessage that
// also wraps the decoder's *wire.DecodeError.
func parseMessage(b []byte) (*wire.MegolmMessage, error) {
	m, err := wire.DecodeMegolmMessage(b)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", ErrInvalidMessage, err)
	}
	return m, nil
}

// verifySignature checks the message's Ed25519 signature. This comes first,
// before any secret is touched: a message not signed by the session's owner is
// rejected without looking at its index.
func verifySignature(signer keys.Ed25519PublicKey, m *wire.MegolmMessage) bool {
	return signer.Verify(m.SignatureCovered(), m.Signature[:])
}

// openMessage checks the MAC of m under the keys of r, which must already be at
// m's index, and only then decrypts and unpads. A MAC failure is ErrBadMAC; a
// padding failure after a good MAC (a sender bug, not an attack) is reported
// as such.
func openMessage(r *ratchet, m *wire.MegolmMessage) ([]byte, error) {
	k := r.keys()
	defer k.Clear()
	if !k.VerifyTruncatedMAC(m.MACCovered(), m.MAC[:]) {
		return nil, ErrBadMAC
	}
	plaintext, err := k.Decrypt(m.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("megolm: decrypt: %w", err)
	}
	return plaintext, nil
}
