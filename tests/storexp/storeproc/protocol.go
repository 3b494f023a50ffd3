// Package storeproc is the line protocol between the cross-process store
// tests and their helper program, and the test side of it: build the helper,
// start processes, send them requests one at a time and read their replies.
//
// Every line is one JSON object, carried by package lineproc. A request names
// an operation and carries an id; the helper runs each request in its own
// goroutine and answers with a [Reply] carrying the same id, preceded by any
// [Reply] events (Event set) the operation reports on the way, such as
// "inside" from within a transaction. Because a test waits for each reply before sending the next
// request to the same process, it drives every process step by step while
// they all stay alive.
package storeproc

import (
	"crypto/sha256"
	"fmt"
)

// Operations a helper understands.
const (
	OpPutSession  = "put-session"  // Update: store Session for Sender
	OpViewSession = "view-session" // View: read the newest session of Sender
	OpViewAccount = "view-account" // View: read the account (warms the cache)
	OpDecrypt     = "decrypt"      // Update: decrypt Type/Body with a session of Sender, commit
	OpEncrypt     = "encrypt"      // Update (Synced): encrypt Plaintext with the newest session of Sender
	OpPreKey      = "prekey"       // Update: receive the pre-key message Body from Sender
	OpWriteLoop   = "write-loop"   // Updates without end, reporting each commit, until killed
	OpRecord      = "record"       // Update: record Label
	OpHold        = "hold"         // Update that records Label, then waits for OpFinish
	OpFinish      = "finish"       // let the OpHold with id Target commit
	OpSeen        = "seen"         // View: whether Label was recorded
	OpAcquire     = "acquire"      // take the lease and keep it, as for a batch of steps
	OpPhase       = "phase"        // SetPhase(Phase), then report the files
	OpFiles       = "files"        // report the WAL size and open store files
)

// Outcomes of OpPreKey.
const (
	// Created: a new session was made from the one-time key, the key row
	// removed and both committed in one transaction.
	Created = "created"
	// Duplicate: this very message was decrypted before; nothing written.
	Duplicate = "duplicate"
	// Matched: the message belongs to a session the store already holds,
	// which decrypted it; the session change was committed.
	Matched = "matched"
)

// Error kinds a reply names, so that tests branch without parsing text.
const (
	KindSuspended  = "suspended"    // cryptostore.ErrSuspended
	KindLeaseLost  = "lease-lost"   // cryptostore.ErrLeaseLost
	KindBadMAC     = "bad-mac"      // olm.ErrBadMAC
	KindMissingOTK = "missing-otk"  // olm.ErrMissingOneTimeKey: the account lacks the key
	KindKeyRowGone = "key-row-gone" // the account held the key but its row was already deleted
	KindOther      = "other"
)

// Request is one line sent to a helper.
type Request struct {
	ID int    `json:"id"`
	Op string `json:"op"`

	Sender    string `json:"sender,omitempty"`    // the peer's Curve25519 identity key
	Session   []byte `json:"session,omitempty"`   // olm.Session.Pickle under the store key, no associated data
	Type      int    `json:"type,omitempty"`      // olm.MessageType of Body
	Body      []byte `json:"body,omitempty"`      // an Olm message body
	Plaintext string `json:"plaintext,omitempty"` // for OpEncrypt
	Label     string `json:"label,omitempty"`     // names a row (see LabelHash) or a run
	Synced    bool   `json:"synced,omitempty"`    // commit with cryptostore.Synced
	// Naive makes OpPreKey skip looking for an existing session, so a loser
	// goes straight to the account, as a receiver that does not check would.
	Naive bool `json:"naive,omitempty"`
	// StartAt, Unix nanoseconds, delays the operation until then: requests
	// sent to several processes with one StartAt race each other.
	StartAt int64 `json:"start_at,omitempty"`
	// PauseInside makes OpWriteLoop wait this many milliseconds inside the
	// transaction of iteration PauseAt, after its first write.
	PauseInside int    `json:"pause_inside,omitempty"`
	PauseAt     int    `json:"pause_at,omitempty"`
	Target      int    `json:"target,omitempty"` // the OpHold that OpFinish releases
	Phase       string `json:"phase,omitempty"`  // "active", "background" or "suspended"
}

// SetID numbers the request (lineproc.Request).
func (r *Request) SetID(id int) { r.ID = id }

// Reply is one line printed by a helper: an event on the way (Event set) or
// the final answer to request ID. The first line a helper prints is the
// event "ready" with ID 0.
type Reply struct {
	ID    int    `json:"id"`
	Event string `json:"event,omitempty"`
	Seq   int    `json:"seq,omitempty"` // the write-loop iteration an event is about

	OK   bool   `json:"ok"`
	Err  string `json:"err,omitempty"`
	Kind string `json:"kind,omitempty"` // one of the Kind constants when Err is set

	Holder    string   `json:"holder,omitempty"`    // ready: the lease holder identity
	Before    string   `json:"before,omitempty"`    // the session as read in the transaction (libolm pickle)
	After     string   `json:"after,omitempty"`     // the session as committed (libolm pickle)
	Plaintext string   `json:"plaintext,omitempty"` // decrypt, prekey
	Type      int      `json:"type,omitempty"`      // encrypt
	Body      []byte   `json:"body,omitempty"`      // encrypt
	Outcome   string   `json:"outcome,omitempty"`   // prekey
	SessionID string   `json:"session_id,omitempty"`
	Keys      int      `json:"keys,omitempty"` // view-account: one-time keys held
	Seen      bool     `json:"seen,omitempty"`
	WALSize   int64    `json:"wal_size"`        // phase, files: size of <db>-wal, -1 if absent
	Files     []string `json:"files,omitempty"` // phase, files: open descriptors naming the store's files
}

// StateKey encrypts the libolm pickles in Before and After. They are compared
// byte for byte (libolm's format is deterministic for one key), never opened.
var StateKey = []byte("storexp state")

// LabelHash is the Olm message hash under which a helper records Label, so
// that a test can look the row up in olm_message_hashes.
func LabelHash(label string) [32]byte { return sha256.Sum256([]byte("storexp\x00" + label)) }

// LoopLabel names the rows of write-loop iteration seq of run: part is "a"
// (written first) or "b" (written last, just before the commit).
func LoopLabel(run string, seq int, part string) string {
	return fmt.Sprintf("%s/%d/%s", run, seq, part)
}
