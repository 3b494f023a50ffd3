package wire

import "fmt"

// Field numbers of an Olm pre-key message.
const (
	preKeyOneTimeKey  = 1
	preKeyBaseKey     = 2
	preKeyIdentityKey = 3
	preKeyMessage     = 4
)

// PreKeyMessage is a pre-key (type 0) Olm message: the session-setup keys and
// a complete normal message. The wrapper itself carries no MAC.
type PreKeyMessage struct {
	OneTimeKey  [KeyLength]byte
	BaseKey     [KeyLength]byte
	IdentityKey [KeyLength]byte
	Message     []byte // the encoded inner OlmMessage
}

// EncodePreKeyMessage encodes a pre-key message around an encoded inner message.
func EncodePreKeyMessage(oneTimeKey, baseKey, identityKey *[KeyLength]byte, inner []byte) []byte {
	n := 1 + 3*(2+KeyLength) + 1 + varintLen(uint64(len(inner))) + len(inner)
	b := make([]byte, 0, n)
	b = append(b, Version)
	b = appendBytesField(b, preKeyOneTimeKey, oneTimeKey[:])
	b = appendBytesField(b, preKeyBaseKey, baseKey[:])
	b = appendBytesField(b, preKeyIdentityKey, identityKey[:])
	return appendBytesField(b, preKeyMessage, inner)
}

// DecodePreKeyMessage parses b. All four fields are required (the identity key
// too: Matrix always sends it). The returned message aliases b.
func DecodePreKeyMessage(b []byte) (*PreKeyMessage, error) {
	const what = "pre-key message"
	if len(b) < 1 {
		return nil, decodeErr(what, "empty")
	}
	if b[0] != Version {
		return nil, decodeErr(what, "unsupported version %d", b[0])
	}
	m := new(PreKeyMessage)
	var have [5]bool
	err := forEachField(b[1:], func(f field) error {
		if f.num < preKeyOneTimeKey || f.num > preKeyMessage {
			return nil
		}
		if f.wire != typeBytes {
			return fmt.Errorf("field %d has wire type %d", f.num, f.wire)
		}
		if have[f.num] {
			return fmt.Errorf("duplicate field %d", f.num)
		}
		have[f.num] = true
		var dst *[KeyLength]byte
		switch f.num {
		case preKeyOneTimeKey:
			dst = &m.OneTimeKey
		case preKeyBaseKey:
			dst = &m.BaseKey
		case preKeyIdentityKey:
			dst = &m.IdentityKey
		case preKeyMessage:
			m.Message = f.bytes
			return nil
		}
		if len(f.bytes) != KeyLength {
			return fmt.Errorf("key field %d is %d bytes", f.num, len(f.bytes))
		}
		copy(dst[:], f.bytes)
		return nil
	})
	if err != nil {
		return nil, decodeErr(what, "%v", err)
	}
	for num := preKeyOneTimeKey; num <= preKeyMessage; num++ {
		if !have[num] {
			return nil, decodeErr(what, "missing field %d", num)
		}
	}
	return m, nil
}
