package wire

import (
	"crypto/subtle"
	"fmt"
	"math"
)

// Version is the protocol version byte of Olm and Megolm messages (v1 sessions).
const Version = 3

// MACLength is the truncated MAC length of version-3 messages.
const MACLength = 8

// KeyLength is the length of every Curve25519 key carried in a message.
const KeyLength = 32

// Field numbers of an Olm normal message.
const (
	olmRatchetKey = 1
	olmChainIndex = 2
	olmCiphertext = 4
)

// OlmMessage is a normal (type 1) Olm message.
type OlmMessage struct {
	RatchetKey [KeyLength]byte
	ChainIndex uint32
	Ciphertext []byte
	// MAC is the truncated MAC over Authenticated().
	MAC [MACLength]byte

	raw []byte // the whole encoded message, when decoded
}

// EncodeOlmMessage encodes the header and ciphertext and leaves room for the
// MAC, which the caller computes over the returned message minus its last
// MACLength bytes and writes into them.
func EncodeOlmMessage(ratchetKey *[KeyLength]byte, chainIndex uint32, ciphertext []byte) []byte {
	n := OlmMessageLen(chainIndex, len(ciphertext))
	b := make([]byte, 0, n)
	b = append(b, Version)
	b = appendBytesField(b, olmRatchetKey, ratchetKey[:])
	b = appendVarintField(b, olmChainIndex, uint64(chainIndex))
	b = appendBytesField(b, olmCiphertext, ciphertext)
	return b[:n]
}

// OlmMessageLen returns the encoded length of a message with a
// ciphertext of n bytes, MAC included.
func OlmMessageLen(chainIndex uint32, n int) int {
	return 1 + 2 + KeyLength + 1 + varintLen(uint64(chainIndex)) + 1 + varintLen(uint64(n)) + n + MACLength
}

// DecodeOlmMessage parses b. The returned message aliases b.
func DecodeOlmMessage(b []byte) (*OlmMessage, error) {
	const what = "olm message"
	if len(b) < 1+MACLength {
		return nil, decodeErr(what, "%d bytes is too short", len(b))
	}
	if b[0] != Version {
		return nil, decodeErr(what, "unsupported version %d", b[0])
	}
	m := &OlmMessage{raw: b}
	var haveKey, haveIndex, haveCT bool
	body := b[1 : len(b)-MACLength]
	err := forEachField(body, func(f field) error {
		switch {
		case f.num == olmRatchetKey && f.wire == typeBytes:
			if haveKey {
				return fmt.Errorf("duplicate ratchet key")
			}
			if len(f.bytes) != KeyLength {
				return fmt.Errorf("ratchet key is %d bytes", len(f.bytes))
			}
			copy(m.RatchetKey[:], f.bytes)
			haveKey = true
		case f.num == olmChainIndex && f.wire == typeVarint:
			if haveIndex {
				return fmt.Errorf("duplicate chain index")
			}
			if f.value > math.MaxUint32 {
				return fmt.Errorf("chain index %d exceeds 32 bits", f.value)
			}
			m.ChainIndex = uint32(f.value)
			haveIndex = true
		case f.num == olmCiphertext && f.wire == typeBytes:
			if haveCT {
				return fmt.Errorf("duplicate ciphertext")
			}
			m.Ciphertext = f.bytes
			haveCT = true
		case f.num == olmRatchetKey || f.num == olmChainIndex || f.num == olmCiphertext:
			return fmt.Errorf("field %d has wire type %d", f.num, f.wire)
		}
		return nil
	})
	if err != nil {
		return nil, decodeErr(what, "%v", err)
	}
	if !haveKey || !haveIndex || !haveCT {
		return nil, decodeErr(what, "missing field (ratchet key %t, chain index %t, ciphertext %t)", haveKey, haveIndex, haveCT)
	}
	copy(m.MAC[:], b[len(b)-MACLength:])
	return m, nil
}

// Authenticated returns the bytes the MAC covers: version and fields.
func (m *OlmMessage) Authenticated() []byte { return m.raw[:len(m.raw)-MACLength] }

// CheckMAC reports in constant time whether mac equals the message's MAC.
func (m *OlmMessage) CheckMAC(mac []byte) bool {
	return len(mac) == MACLength && subtle.ConstantTimeCompare(mac, m.MAC[:]) == 1
}
