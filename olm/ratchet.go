package olm

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/xolm/xolm/internal/cipher"
	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/wire"
)

// Limits on what a peer can make a session compute or keep. They are libolm's
// (include/olm/ratchet.hh, src/ratchet.cpp); vodozemac uses the same numbers
// (src/olm/session/receiver_chain.rs, src/olm/session/mod.rs), except that it
// keeps skipped keys per chain.
const (
	// MaxMessageGap is the largest number of chain steps one message may make
	// the receiver compute: a message more than this far ahead of its chain
	// fails with *MessageGapError. Each step costs two HMACs, so a hostile
	// message costs at most 4000 HMACs.
	MaxMessageGap = 2000

	// MaxSkippedMessageKeys is the number of message keys kept for messages
	// that were skipped over (arrived out of order). It is one list for the
	// whole session, newest first; beyond it the oldest key is dropped and its
	// message can no longer be decrypted. 40 keys cost 40×68 bytes.
	MaxSkippedMessageKeys = 40

	// MaxReceiverChains is the number of receiving chains (one per ratchet key
	// of the peer) a session keeps, newest first; beyond it the oldest chain is
	// dropped, and late messages on it can no longer be decrypted.
	MaxReceiverChains = 5
)

// HKDF info strings of the Olm ratchet (PROTOCOL.md §2.4, §2.5).
const (
	infoRoot    = "OLM_ROOT"
	infoRatchet = "OLM_RATCHET"
)

// Seeds of the symmetric chain: HMAC(chain key, 0x01) is the message key,
// HMAC(chain key, 0x02) the next chain key.
const (
	messageKeySeed = 0x01
	chainKeySeed   = 0x02
)

// chainKey is one position of a symmetric-key ratchet.
type chainKey struct {
	key   [32]byte
	index uint32
}

// messageKey returns the key for the message at this position.
func (c *chainKey) messageKey() [32]byte { return hmacByte(&c.key, messageKeySeed) }

// advance moves to the next position.
func (c *chainKey) advance() {
	c.key = hmacByte(&c.key, chainKeySeed)
	c.index++
}

func hmacByte(key *[32]byte, b byte) [32]byte {
	h := hmac.New(sha256.New, key[:])
	h.Write([]byte{b})
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// senderChain is our current ratchet key and the chain derived from it.
type senderChain struct {
	ratchetKey *keys.Curve25519SecretKey
	chain      chainKey
}

// receiverChain is a chain derived from one of the peer's ratchet keys.
type receiverChain struct {
	ratchetKey Curve25519PublicKey
	chain      chainKey
}

// skippedKey is a message key kept for a message that has not arrived yet.
type skippedKey struct {
	ratchetKey Curve25519PublicKey
	index      uint32
	key        [32]byte
}

// ratchet is the double-ratchet state of a session.
type ratchet struct {
	root      [32]byte
	sender    *senderChain    // nil until we send on a new chain
	receivers []receiverChain // newest first, at most MaxReceiverChains
	skipped   []skippedKey    // newest first, at most MaxSkippedMessageKeys
}

// clone returns a copy sharing nothing mutable with r.
func (r *ratchet) clone() ratchet {
	c := ratchet{root: r.root, receivers: slices.Clone(r.receivers), skipped: slices.Clone(r.skipped)}
	if r.sender != nil {
		priv, pub := r.sender.ratchetKey.PrivateArray(), r.sender.ratchetKey.PublicKey().Array()
		c.sender = &senderChain{ratchetKey: keys.NewCurve25519SecretKeyFromParts(&priv, &pub), chain: r.sender.chain}
		clear(priv[:])
	}
	return c
}

// deriveRoot splits HKDF output into a root key and the first chain key of a
// new chain.
func deriveRoot(secret, salt []byte, info string) (root [32]byte, chain chainKey) {
	out, err := hkdf.Key(sha256.New, secret, salt, info, 64)
	if err != nil {
		panic("olm: internal error: " + err.Error())
	}
	copy(root[:], out[:32])
	copy(chain.key[:], out[32:])
	clear(out)
	return root, chain
}

// advanceRoot performs one step of the root ratchet: DH between our ratchet
// key and theirs, salted with the current root key.
func advanceRoot(root *[32]byte, ours *keys.Curve25519SecretKey, theirs Curve25519PublicKey) ([32]byte, chainKey, error) {
	secret, err := ours.SharedSecret(theirs)
	if err != nil {
		return [32]byte{}, chainKey{}, err
	}
	newRoot, chain := deriveRoot(secret[:], root[:], infoRatchet)
	clear(secret[:])
	return newRoot, chain, nil
}

// initAsAlice starts the ratchet of the session initiator, who sends first.
func initAsAlice(sharedSecret []byte, ratchetKey *keys.Curve25519SecretKey) ratchet {
	root, chain := deriveRoot(sharedSecret, nil, infoRoot)
	return ratchet{root: root, sender: &senderChain{ratchetKey: ratchetKey, chain: chain}}
}

// initAsBob starts the ratchet of the responder, who receives on the
// initiator's first ratchet key.
func initAsBob(sharedSecret []byte, theirRatchetKey Curve25519PublicKey) ratchet {
	root, chain := deriveRoot(sharedSecret, nil, infoRoot)
	return ratchet{root: root, receivers: []receiverChain{{ratchetKey: theirRatchetKey, chain: chain}}}
}

// encrypt seals plaintext as a normal message on the sending chain, starting
// a new chain (and reading 32 bytes from rand for its ratchet key) when there
// is none. r is unchanged on error.
func (r *ratchet) encrypt(rand io.Reader, plaintext []byte) ([]byte, error) {
	sender := r.sender
	if sender == nil {
		if len(r.receivers) == 0 {
			return nil, errors.New("olm: encrypt: session has no chain to ratchet from")
		}
		key, err := keys.GenerateCurve25519SecretKey(rand)
		if err != nil {
			return nil, fmt.Errorf("olm: encrypt: %w", err)
		}
		root, chain, err := advanceRoot(&r.root, key, r.receivers[0].ratchetKey)
		if err != nil {
			return nil, fmt.Errorf("olm: encrypt: %w", err)
		}
		r.root = root
		sender = &senderChain{ratchetKey: key, chain: chain}
		r.sender = sender
	}
	mk := sender.chain.messageKey()
	msg := sealMessage(&mk, sender.ratchetKey.PublicKey(), sender.chain.index, plaintext)
	clear(mk[:])
	sender.chain.advance()
	return msg, nil
}

// sealMessage encrypts plaintext under a message key and encodes the normal
// message, MAC included.
func sealMessage(mk *[32]byte, ratchetKey Curve25519PublicKey, index uint32, plaintext []byte) []byte {
	k := cipher.Derive(mk[:], cipher.InfoOlmKeys)
	defer k.Clear()
	rk := ratchetKey.Array()
	msg := wire.EncodeOlmMessage(&rk, index, k.Encrypt(nil, plaintext))
	body := len(msg) - wire.MACLength
	mac := k.MAC(msg[:body])
	copy(msg[body:], mac[:wire.MACLength])
	return msg
}

// openMessage verifies a normal message's MAC under a message key and, only
// if it verifies, decrypts it.
func openMessage(mk *[32]byte, m *wire.OlmMessage) ([]byte, error) {
	k := cipher.Derive(mk[:], cipher.InfoOlmKeys)
	defer k.Clear()
	if !k.VerifyTruncatedMAC(m.Authenticated(), m.MAC[:]) {
		return nil, ErrBadMAC
	}
	pt, err := k.Decrypt(m.Ciphertext)
	if err != nil {
		// Authenticated, so the sender really produced this: a broken peer.
		return nil, decodeError("olm message", "invalid ciphertext padding")
	}
	return pt, nil
}
