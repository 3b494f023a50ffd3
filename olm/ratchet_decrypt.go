package olm

import (
	"fmt"
	"slices"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/wire"
)

// ratchetUpdate is the change that decrypting one message makes to a ratchet.
// Decryption computes it from copies; the ratchet itself changes only when the
// update is applied, after the message has authenticated and decrypted.
type ratchetUpdate struct {
	usedSkipped int // position in skipped of the key used, or -1

	// For a message on a receiving chain (usedSkipped < 0):
	chainPos   int // position in receivers, or -1 for a new chain
	root       [32]byte
	ratchetKey Curve25519PublicKey
	chain      chainKey     // the chain after the message
	skipped    []skippedKey // keys of messages skipped over, newest first
}

// decrypt authenticates and decrypts a normal message without changing r. On
// success it returns the plaintext and the update to apply.
//
// It follows libolm (src/ratchet.cpp): a message on a known chain either
// advances that chain, keeping the keys it skips over, or uses a kept key; a
// message on an unknown chain starts a new chain from our current sending
// ratchet key. A message below its chain's position with no kept key fails as
// ErrBadMAC, as in libolm: its key was used (a replay) or dropped.
func (r *ratchet) decrypt(m *wire.OlmMessage) ([]byte, *ratchetUpdate, error) {
	theirKey, err := keys.NewCurve25519PublicKeyFromBytes(m.RatchetKey[:])
	if err != nil {
		return nil, nil, fmt.Errorf("olm: decrypt: %w", err)
	}
	u := &ratchetUpdate{usedSkipped: -1, chainPos: -1, ratchetKey: theirKey}
	var chain chainKey
	if u.chainPos = r.receiverChain(theirKey); u.chainPos >= 0 {
		chain = r.receivers[u.chainPos].chain
		if m.ChainIndex < chain.index {
			return r.decryptSkipped(m, theirKey)
		}
	} else {
		// The peer moved to a new ratchet key. It may only do so after
		// receiving from our current sending chain (libolm refuses otherwise).
		if r.sender == nil {
			return nil, nil, ErrBadMAC
		}
		if m.ChainIndex > MaxMessageGap {
			return nil, nil, &MessageGapError{Gap: m.ChainIndex, Max: MaxMessageGap}
		}
		u.root, chain, err = advanceRoot(&r.root, r.sender.ratchetKey, theirKey)
		if err != nil {
			return nil, nil, fmt.Errorf("olm: decrypt: %w", err)
		}
	}
	if gap := m.ChainIndex - chain.index; gap > MaxMessageGap {
		return nil, nil, &MessageGapError{Gap: gap, Max: MaxMessageGap}
	}
	u.skipped = chain.skipTo(m.ChainIndex, theirKey)
	mk := chain.messageKey()
	pt, err := openMessage(&mk, m)
	clear(mk[:])
	if err != nil {
		clearSkipped(u.skipped)
		return nil, nil, err
	}
	chain.advance()
	u.chain = chain
	return pt, u, nil
}

// decryptSkipped decrypts a message that arrived after later ones, with the
// key kept for it.
func (r *ratchet) decryptSkipped(m *wire.OlmMessage, theirKey Curve25519PublicKey) ([]byte, *ratchetUpdate, error) {
	for i := range r.skipped {
		sk := &r.skipped[i]
		if sk.index != m.ChainIndex || sk.ratchetKey != theirKey {
			continue
		}
		pt, err := openMessage(&sk.key, m)
		if err != nil {
			return nil, nil, err
		}
		return pt, &ratchetUpdate{usedSkipped: i}, nil
	}
	return nil, nil, ErrBadMAC
}

// receiverChain returns the position of the chain for the peer's ratchet key,
// or -1.
func (r *ratchet) receiverChain(theirKey Curve25519PublicKey) int {
	for i := range r.receivers {
		if r.receivers[i].ratchetKey == theirKey {
			return i
		}
	}
	return -1
}

// skipTo advances c to index and returns the message keys of the positions it
// passed, newest first. Only the last MaxSkippedMessageKeys are computed:
// older ones would be dropped from the session's list at once.
func (c *chainKey) skipTo(index uint32, ratchetKey Curve25519PublicKey) []skippedKey {
	if c.index >= index {
		return nil
	}
	var kept []skippedKey
	for c.index < index {
		if index-c.index <= MaxSkippedMessageKeys {
			if kept == nil {
				kept = make([]skippedKey, 0, min(index-c.index, MaxSkippedMessageKeys))
			}
			kept = append(kept, skippedKey{ratchetKey: ratchetKey, index: c.index, key: c.messageKey()})
		}
		c.advance()
	}
	slices.Reverse(kept)
	return kept
}

// apply commits a successful decryption.
func (r *ratchet) apply(u *ratchetUpdate) {
	if u.usedSkipped >= 0 {
		clear(r.skipped[u.usedSkipped].key[:])
		r.skipped = slices.Delete(r.skipped, u.usedSkipped, u.usedSkipped+1)
		return
	}
	if u.chainPos >= 0 {
		r.receivers[u.chainPos].chain = u.chain
	} else {
		r.root = u.root
		newest := receiverChain{ratchetKey: u.ratchetKey, chain: u.chain}
		kept := r.receivers[:min(len(r.receivers), MaxReceiverChains-1)]
		r.receivers = append([]receiverChain{newest}, kept...)
		// Our sending ratchet key has served; the next message starts a new
		// chain with a fresh key.
		r.sender.ratchetKey.Clear()
		r.sender = nil
	}
	if len(u.skipped) > 0 {
		old := r.skipped
		all := append(u.skipped, old...) // a new array whenever old is not empty
		n := min(len(all), MaxSkippedMessageKeys)
		clearSkipped(all[n:])
		if len(old) > 0 {
			clearSkipped(old)
		}
		r.skipped = all[:n]
	}
}

func clearSkipped(ks []skippedKey) {
	for i := range ks {
		clear(ks[i].key[:])
	}
}
