package wire

import (
	"fmt"
	"math"
)

// SignatureLength is the length of the Ed25519 signature ending a Megolm message.
const SignatureLength = 64

// Field numbers of a Megolm message.
const (
	megolmIndex      = 1
	megolmCiphertext = 2
)

// MegolmMessage is a Megolm group message.
type MegolmMessage struct {
	Index      uint32
	Ciphertext []byte
	MAC        [MACLength]byte
	Signature  [SignatureLength]byte

	raw []byte
}

// MegolmMessageLen returns the encoded length of a message with a ciphertext
// of n bytes, MAC and signature included.
func MegolmMessageLen(index uint32, n int) int {
	return 1 + 1 + varintLen(uint64(index)) + 1 + varintLen(uint64(n)) + n + MACLength + SignatureLength
}

// EncodeMegolmMessage encodes the header and ciphertext and leaves room for MAC
// and signature: the caller fills the MAC over MACCovered and then the
// signature over SignatureCovered.
func EncodeMegolmMessage(index uint32, ciphertext []byte) []byte {
	n := MegolmMessageLen(index, len(ciphertext))
	b := make([]byte, 0, n)
	b = append(b, Version)
	b = appendVarintField(b, megolmIndex, uint64(index))
	b = appendBytesField(b, megolmCiphertext, ciphertext)
	return b[:n]
}

// MegolmMACCovered returns the part of an encoded Megolm message that the MAC covers.
func MegolmMACCovered(b []byte) []byte { return b[:len(b)-MACLength-SignatureLength] }

// MegolmSignatureCovered returns the part the signature covers (MAC included).
func MegolmSignatureCovered(b []byte) []byte { return b[:len(b)-SignatureLength] }

// DecodeMegolmMessage parses b. The returned message aliases b.
func DecodeMegolmMessage(b []byte) (*MegolmMessage, error) {
	const what = "megolm message"
	if len(b) < 1+MACLength+SignatureLength {
		return nil, decodeErr(what, "%d bytes is too short", len(b))
	}
	if b[0] != Version {
		return nil, decodeErr(what, "unsupported version %d", b[0])
	}
	m := &MegolmMessage{raw: b}
	var haveIndex, haveCT bool
	err := forEachField(MegolmMACCovered(b)[1:], func(f field) error {
		switch {
		case f.num == megolmIndex && f.wire == typeVarint:
			if haveIndex {
				return fmt.Errorf("duplicate message index")
			}
			if f.value > math.MaxUint32 {
				return fmt.Errorf("message index %d exceeds 32 bits", f.value)
			}
			m.Index = uint32(f.value)
			haveIndex = true
		case f.num == megolmCiphertext && f.wire == typeBytes:
			if haveCT {
				return fmt.Errorf("duplicate ciphertext")
			}
			m.Ciphertext = f.bytes
			haveCT = true
		case f.num == megolmIndex || f.num == megolmCiphertext:
			return fmt.Errorf("field %d has wire type %d", f.num, f.wire)
		}
		return nil
	})
	if err != nil {
		return nil, decodeErr(what, "%v", err)
	}
	if !haveIndex || !haveCT {
		return nil, decodeErr(what, "missing field (index %t, ciphertext %t)", haveIndex, haveCT)
	}
	n := len(b)
	copy(m.MAC[:], b[n-SignatureLength-MACLength:n-SignatureLength])
	copy(m.Signature[:], b[n-SignatureLength:])
	return m, nil
}

// MACCovered returns the bytes the MAC covers.
func (m *MegolmMessage) MACCovered() []byte { return MegolmMACCovered(m.raw) }

// SignatureCovered returns the bytes the signature covers.
func (m *MegolmMessage) SignatureCovered() []byte { return MegolmSignatureCovered(m.raw) }
