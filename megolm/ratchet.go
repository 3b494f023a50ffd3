package megolm

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"

	"github.com/xolm/xolm/internal/cipher"
)

// Sizes of the Megolm ratchet (PROTOCOL.md §3.1).
const (
	ratchetParts    = 4
	ratchetPartSize = 32
	ratchetSize     = ratchetParts * ratchetPartSize // R0 ‖ R1 ‖ R2 ‖ R3
)

// maxAdvanceHMACs bounds the HMAC computations of one advanceTo, whatever the
// distance. The counter has four 8-bit parts; moving part j by s steps costs
// s-1 re-hashes of R_j and one re-seed of R_j..R3 (4-j HMACs). Only the top
// part can need 256 steps (going round 2^32); the others need at most 255. A
// message index is attacker-controlled, but it is a u32, so there is no longer
// jump to ask for: this is the most work one message can cause.
const maxAdvanceHMACs = (256 - 1 + 4) + (255 - 1 + 3) + (255 - 1 + 2) + (255 - 1 + 1) // 1,027

// ratchet is the Megolm ratchet: four 32-byte values R0..R3 and the index of
// the message they key. Part j is re-seeded every 2^(8(3-j)) steps, so any
// later index can be reached in at most maxAdvanceHMACs HMACs, while earlier
// states cannot be recomputed from it: that is Megolm's forward secrecy.
//
// The zero-size func field makes == a compile error; use equal, which is
// constant time.
type ratchet struct {
	_       [0]func()
	data    [ratchetSize]byte
	counter uint32
}

// newRatchet returns a ratchet at counter holding a copy of data.
func newRatchet(data *[ratchetSize]byte, counter uint32) ratchet {
	return ratchet{data: *data, counter: counter}
}

// part returns R_j.
func (r *ratchet) part(j int) []byte {
	return r.data[j*ratchetPartSize : (j+1)*ratchetPartSize]
}

// rehash writes H_j(src) = HMAC-SHA-256(key=src, data=[j]) into dst, the
// one-way step of every part (libolm's HASH_KEY_SEEDS are the single bytes
// 0..3). dst and src may be the same slice.
func rehash(dst, src []byte, j int) {
	m := hmac.New(sha256.New, src)
	m.Write([]byte{byte(j)})
	m.Sum(dst[:0])
}

// reseedFrom sets R_k = H_k(R_from) for k = 3 down to from, reading the old
// R_from (it is overwritten last). It returns the number of HMACs computed.
func (r *ratchet) reseedFrom(from int) int {
	for k := ratchetParts - 1; k >= from; k-- {
		rehash(r.part(k), r.part(from), k)
	}
	return ratchetParts - from
}

// advance moves the ratchet one step forward, wrapping at 2^32 as libolm does.
func (r *ratchet) advance() {
	r.counter++
	// The highest part whose lower bits all rolled over is re-hashed, and
	// every lower part is re-seeded from it. When none rolled over, only R3
	// moves.
	from := ratchetParts - 1
	for j := range ratchetParts - 1 {
		if r.counter&(0x00ffffff>>(8*j)) == 0 {
			from = j
			break
		}
	}
	r.reseedFrom(from)
}

// advanceTo moves the ratchet forward to target, wrapping at 2^32: a target
// behind the counter is reached by going round. It costs at most
// maxAdvanceHMACs HMACs, which it returns, and gives exactly the state that
// (target - counter) calls of advance would.
func (r *ratchet) advanceTo(target uint32) int {
	n := 0
	for j := range ratchetParts {
		shift := uint(8 * (ratchetParts - 1 - j))
		steps := ((target >> shift) - (r.counter >> shift)) & 0xff
		if steps == 0 {
			// This part already matches. Only when the whole target is
			// behind (which can then only show in the top part) must
			// the ratchet go round: 256 steps of R0 make 2^32.
			if target >= r.counter {
				continue
			}
			steps = 0x100
		}
		// Every step but the last only re-hashes R_j: the lower parts
		// it would seed are overwritten by the last step anyway.
		for ; steps > 1; steps-- {
			rehash(r.part(j), r.part(j), j)
			n++
		}
		n += r.reseedFrom(j)
		r.counter = target &^ (1<<shift - 1)
	}
	return n
}

// keys derives the AES-256 key, HMAC key and IV of the message at the
// ratchet's counter: HKDF over all 128 bytes, info "MEGOLM_KEYS".
func (r *ratchet) keys() *cipher.Keys { return cipher.Derive(r.data[:], cipher.InfoMegolmKeys) }

// equal reports in constant time whether both ratchets hold the same data at
// the same counter.
func (r *ratchet) equal(o *ratchet) bool {
	same := subtle.ConstantTimeCompare(r.data[:], o.data[:])
	return same&subtle.ConstantTimeEq(int32(r.counter), int32(o.counter)) == 1
}

// clear overwrites the ratchet (best effort: Go may have copied it).
func (r *ratchet) clear() {
	clear(r.data[:])
	r.counter = 0
}

// appendCounterAndData appends the counter as a big-endian u32 and then the data: the
// layout shared by both session-key formats.
func (r *ratchet) appendCounterAndData(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, r.counter)
	return append(b, r.data[:]...)
}
