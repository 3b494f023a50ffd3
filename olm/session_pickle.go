package olm

import (
	"fmt"

	"github.com/xolm/xolm/internal/libolmpickle"
	"github.com/xolm/xolm/internal/pickle"
)

// sessionFormatVersion is the first field of xolm's own session encoding.
// Version 1 is followed by libolm's session version 1 layout.
const sessionFormatVersion = 1

// Pickle encrypts the session for storage under a 32-byte key, binding ad
// (for a store: table, row key and schema version). Restore it with
// [UnpickleSession].
func (s *Session) Pickle(key *[32]byte, ad []byte) []byte {
	var e libolmpickle.Encoder
	e.Grow(4 + s.encodedSize())
	e.U32(sessionFormatVersion)
	s.encode(&e)
	raw := e.Result()
	defer clear(raw)
	return pickle.Seal(key, pickle.KindSession, ad, raw)
}

// UnpickleSession restores a session from [Session.Pickle] output with the
// same key and associated data. Errors: [ErrPickleAuth], [ErrPickleFormat],
// *[PickleVersionError].
func UnpickleSession(b []byte, key *[32]byte, ad []byte) (*Session, error) {
	raw, err := pickle.Open(key, pickle.KindSession, ad, b)
	if err != nil {
		return nil, fmt.Errorf("olm: unpickle session: %w", openError(err))
	}
	defer clear(raw)
	d, v, err := versionedDecoder(raw)
	if err != nil {
		return nil, fmt.Errorf("olm: unpickle session: %w", err)
	}
	if v != sessionFormatVersion {
		return nil, &PickleVersionError{Object: "session", Format: "xolm", Version: v}
	}
	s := decodeSession(d)
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("olm: unpickle session: %w: %w", ErrPickleFormat, err)
	}
	return s, nil
}

// encode writes libolm's session layout after its version field:
// received_message(u8) ‖ alice identity key ‖ alice base key ‖ bob one-time
// key ‖ root key ‖ sender chains ‖ receiver chains ‖ skipped message keys.
// encodedSize is the length of what encode writes.
func (s *Session) encodedSize() int {
	const key, chain = 32, 32 + 4
	r := &s.ratchet
	n := 1 + 3*key + key + 4 + 4 + len(r.receivers)*(key+chain) + 4 + len(r.skipped)*(key+key+4)
	if r.sender != nil {
		n += 2*key + chain
	}
	return n
}

func (s *Session) encode(e *libolmpickle.Encoder) {
	e.Bool(s.receivedMessage)
	for _, k := range []Curve25519PublicKey{s.aliceIdentity, s.aliceBase, s.bobOneTime} {
		b := k.Array()
		e.Bytes(b[:])
	}
	r := &s.ratchet
	e.Bytes(r.root[:])
	if r.sender == nil {
		e.U32(0)
	} else {
		e.U32(1)
		encodeCurvePair(e, r.sender.ratchetKey)
		encodeChainKey(e, &r.sender.chain)
	}
	e.U32(uint32(len(r.receivers)))
	for i := range r.receivers {
		rk := r.receivers[i].ratchetKey.Array()
		e.Bytes(rk[:])
		encodeChainKey(e, &r.receivers[i].chain)
	}
	e.U32(uint32(len(r.skipped)))
	for _, sk := range r.skipped {
		rk := sk.ratchetKey.Array()
		e.Bytes(rk[:])
		e.Bytes(sk.key[:])
		e.U32(sk.index)
	}
}

// decodeSession reads what encode writes. A session must have a chain to
// send or receive on; the lists are bounded by this package's limits, which
// are libolm's.
func decodeSession(d *libolmpickle.Decoder) *Session {
	s := &Session{receivedMessage: d.Bool("received message")}
	s.aliceIdentity = decodePublicKey(d, "alice identity key")
	s.aliceBase = decodePublicKey(d, "alice base key")
	s.bobOneTime = decodePublicKey(d, "bob one-time key")
	s.setID()
	r := &s.ratchet
	r.root = d.Array32("root key")
	if d.Count("sender chain count", 1) == 1 {
		r.sender = &senderChain{ratchetKey: decodeCurvePair(d), chain: decodeChainKey(d)}
	}
	n := d.Count("receiver chain count", MaxReceiverChains)
	r.receivers = make([]receiverChain, 0, n)
	for range n {
		r.receivers = append(r.receivers, receiverChain{
			ratchetKey: decodePublicKey(d, "receiver ratchet key"),
			chain:      decodeChainKey(d),
		})
	}
	n = d.Count("skipped message key count", MaxSkippedMessageKeys)
	r.skipped = make([]skippedKey, 0, n)
	for range n {
		r.skipped = append(r.skipped, skippedKey{
			ratchetKey: decodePublicKey(d, "skipped ratchet key"),
			key:        d.Array32("message key"),
			index:      d.U32("message index"),
		})
	}
	if r.sender == nil && len(r.receivers) == 0 {
		d.Fail(fmt.Errorf("%w: session has neither a sending nor a receiving chain", libolmpickle.ErrFormat))
	}
	return s
}

// encodeChainKey writes key(32) ‖ index(u32).
func encodeChainKey(e *libolmpickle.Encoder, c *chainKey) {
	e.Bytes(c.key[:])
	e.U32(c.index)
}

func decodeChainKey(d *libolmpickle.Decoder) chainKey {
	return chainKey{key: d.Array32("chain key"), index: d.U32("chain index")}
}

func decodePublicKey(d *libolmpickle.Decoder, what string) Curve25519PublicKey {
	b := d.Array32(what)
	return mustKey(b[:])
}
