// Package megolm implements Megolm, the group ratchet of Matrix rooms
// (m.megolm.v1.aes-sha2), byte-compatible with libolm 3.2 and vodozemac.
//
// For most use cases, use the crypto state machine, which shares, stores and
// rotates these sessions; this package is the protocol alone, with no I/O, no
// clock and no global state.
//
// # Sessions
//
// A sender creates an [OutboundGroupSession], shares its
// [OutboundGroupSession.SessionKey] with each recipient device over Olm (the
// m.room_key event), and encrypts room events with
// [OutboundGroupSession.Encrypt]. A recipient creates an [InboundGroupSession]
// from that key with [NewInboundGroupSession] and decrypts with
// [InboundGroupSession.Decrypt]. A session's ID is the base64 of its Ed25519
// signing key; every message is signed by it.
//
// Each message has an index, and the ratchet only moves forward: a session
// key at index i decrypts messages from i on, never before. An inbound session
// can pass on what it knows with [InboundGroupSession.Export];
// [ImportInboundGroupSession] reads such an exported key (m.forwarded_room_key,
// key backups, key export files). [InboundGroupSession.Compare] tells which of
// two copies of a session is better to keep.
//
// Messages, keys and pickles are raw bytes here; Matrix carries them in
// unpadded base64.
//
// # Security
//
// Decryption verifies the signature, then the MAC, before decrypting, and a
// failed decrypt leaves the session byte-identical. Megolm does not detect
// replays: a message decrypts as often as it is presented, so the caller must
// record which event each (session, index) came from.
//
// The most work a message can cause is bounded: reaching any index costs at
// most about a thousand HMAC-SHA-256 computations, whatever the distance.
//
// # Persistence
//
// [OutboundGroupSession.Pickle] and [InboundGroupSession.Pickle] seal a
// session with XChaCha20-Poly1305 under a 32-byte key, binding caller-chosen
// associated data. libolm's pickle format is read and written too
// ([OutboundGroupSession.LibolmPickle], [ImportLibolmInboundGroupSession], …)
// for migration from libolm-based clients.
//
// Sessions are not safe for concurrent use. Secrets never print: the session
// types format as their ID and index only.
package megolm

import "github.com/xolm/xolm/internal/keys"

// Ed25519PublicKey is an Ed25519 public key: a session's signing key. It
// prints as unpadded base64.
type Ed25519PublicKey = keys.Ed25519PublicKey
