// Package olm implements the Olm protocol: the one-to-one encrypted channel
// between two devices that Matrix uses for to-device messages
// (m.olm.v1.curve25519-aes-sha2). It is byte-compatible with libolm 3.2 and
// vodozemac.
//
// For most use cases, use the Matrix state machine built on this package; use
// olm directly to build one, or to talk to another Olm implementation.
//
// # Accounts
//
// An [Account] holds a device's identity keys and its one-time and fallback
// keys. Publish [Account.IdentityKeys] and the keys from
// [Account.OneTimeKeys] (signed with [Account.Sign]), then call
// [Account.MarkKeysAsPublished].
//
// # Sessions
//
// To write to a device, claim one of its one-time keys and call
// [Account.NewOutboundSession]. Its first messages are pre-key messages
// ([MessageTypePreKey]); the receiver parses one with [ParsePreKeyMessage]
// and calls [Account.NewInboundSession], which returns its side of the
// session and the plaintext, and uses the one-time key up. From then on both
// sides call [Session.Encrypt] and [Session.Decrypt].
//
// Message bodies are binary; Matrix carries them in base64 next to their
// [MessageType].
//
// # Failure and state
//
// Every method either completes or leaves its object unchanged: a message that
// fails to decrypt, for any reason, leaves the session byte-for-byte as it
// was, and a pre-key message that fails leaves the account's one-time key in
// place. Authentication failures are all [ErrBadMAC]. Limits on what a peer
// can make a session do are [MaxMessageGap], [MaxSkippedMessageKeys] and
// [MaxReceiverChains].
//
// Accounts and sessions are not safe for concurrent use. They hold secrets,
// which they never print. Store them with [Account.Pickle] and
// [Session.Pickle]; [ImportLibolmAccount] and [ImportLibolmSession] read
// libolm pickles, and LibolmPickle writes them.
//
// # Randomness
//
// Every function that needs randomness takes an io.Reader and reads exactly
// what libolm would read for the same call, in the same order; pass
// crypto/rand.Reader. With the same bytes, accounts, sessions and messages are
// identical to libolm's.
package olm
