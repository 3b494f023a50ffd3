package machine

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/smallmap"
	"github.com/xolm/xolm/internal/wire"
	"github.com/xolm/xolm/olm"
)

// Reasons a to-device event was not decrypted (in [ToDeviceResult.Err]).
var (
	// ErrMalformedToDevice is matched by [*MalformedToDeviceError].
	ErrMalformedToDevice = errors.New("machine: malformed to-device event")
	// ErrToDeviceAlgorithm reports an m.room.encrypted to-device event with
	// an algorithm other than m.olm.v1.curve25519-aes-sha2.
	ErrToDeviceAlgorithm = errors.New("machine: unsupported to-device encryption algorithm")
	// ErrNotForThisDevice reports an encrypted event with no ciphertext for
	// this device's Curve25519 key.
	ErrNotForThisDevice = errors.New("machine: the event has no ciphertext for this device")
	// ErrDuplicateOlmMessage reports an Olm message that was decrypted
	// before, by this or another process on the same store (DESIGN.md
	// invariant 7). It is harmless and never starts unwedging.
	ErrDuplicateOlmMessage = errors.New("machine: olm message already decrypted")
	// ErrSessionWedged is matched by [*SessionWedgedError].
	ErrSessionWedged = errors.New("machine: no olm session decrypts the message")
)

// MalformedToDeviceError reports an event or encrypted content that does not
// have the shape the specification gives it, or an event larger than
// MaxEventSize (Field "size"; it was not parsed). Field names the part.
type MalformedToDeviceError struct {
	Field string
	Err   error // the parse failure, if any
}

func (e *MalformedToDeviceError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("machine: malformed to-device event: invalid or missing %s", e.Field)
	}
	return fmt.Sprintf("machine: malformed to-device event: %s: %v", e.Field, e.Err)
}

// Unwrap returns the parse failure.
func (e *MalformedToDeviceError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMalformedToDevice) true.
func (e *MalformedToDeviceError) Is(target error) bool { return target == ErrMalformedToDevice }

// SessionWedgedError reports an Olm message, not seen before, that no session
// with its sender decrypts: the sessions are out of step (wedged), or the
// message is forged. Err is the last decryption failure (olm.ErrBadMAC,
// olm.ErrMissingOneTimeKey, *olm.MessageGapError, …); Unwedging says what was
// done to recover.
type SessionWedgedError struct {
	SenderKey     string
	MessageType   olm.MessageType
	SessionsTried int
	Unwedging     Unwedging
	Err           error
}

func (e *SessionWedgedError) Error() string {
	return fmt.Sprintf("machine: no olm session with %s decrypts the message (type %d, %d sessions tried; %s): %v",
		e.SenderKey, e.MessageType, e.SessionsTried, e.Unwedging, e.Err)
}

// Unwrap returns the last decryption failure.
func (e *SessionWedgedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrSessionWedged) true.
func (e *SessionWedgedError) Is(target error) bool { return target == ErrSessionWedged }

// toDeviceBatch is the state of one ReceiveSyncChanges transaction: the
// Olm sessions and the account as the batch's earlier events left them. They
// are the batch's working copies; an event changes copies of them and puts
// them back only once it has passed every check.
//
// A session changed by several events is written once, by flush at the end
// of the batch: the transaction commits all of the batch or none of it, so
// its intermediate states need not reach SQLite.
type toDeviceBatch struct {
	m  *Machine
	tx *cryptostore.Tx
	// sessions holds each sender's sessions as loaded and then changed by
	// the batch, most recently used first, as the store orders them.
	sessions smallmap.Map[string, []*cryptostore.OlmSessionRecord]
	// changed holds the sessions the batch advanced or created, by ID, to
	// be written by flush.
	changed smallmap.Map[string, *cryptostore.OlmSessionRecord]
	account *cryptostore.AccountRecord // loaded on first need
	// devices caches DeviceIdentity for the batch (absent: not looked up;
	// zero: not known).
	devices smallmap.Map[string, cryptostore.DeviceIdentity]
	// events are the batch's encrypted events (nil where an event was done
	// with when parsed), for the store's hashes to be looked up in one
	// statement when first needed.
	events []*olmEvent
	// looked is set once the store's hashes of events are in seen.
	looked bool
	// seen holds the hashes of messages decrypted before: by the store
	// (once looked), and by the batch's own earlier events.
	seen smallmap.Map[[32]byte, bool]
	// decrypted holds the hashes of the messages the batch decrypted, to be
	// recorded by flush.
	decrypted []cryptostore.OlmMessage
}

// newToDeviceBatch starts a batch. Its maps allocate only for a second
// entry: most batches are one event, from one sender.
func newToDeviceBatch(m *Machine, tx *cryptostore.Tx, events []*olmEvent) *toDeviceBatch {
	return &toDeviceBatch{m: m, tx: tx, events: events}
}

// flush writes the hashes of the messages the batch decrypted, in one
// statement, and the sessions it changed, least recently used first, so
// that the store prunes a sender's sessions as it would have one event at a
// time. It returns errSeenAfterAll if a hash was in the store already: a
// message decrypted before decrypted again (a session older than the one
// that decrypted it first, such as one restored from a backup) before the
// batch had looked the hashes up.
func (b *toDeviceBatch) flush() error {
	added, err := b.tx.AddOlmMessages(b.decrypted)
	if err != nil {
		return err
	}
	if added != len(b.decrypted) {
		return errSeenAfterAll
	}
	b.decrypted = nil
	recs := make([]*cryptostore.OlmSessionRecord, 0, b.changed.Len())
	for _, r := range b.changed.All() {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(x, y *cryptostore.OlmSessionRecord) int { return -compareByUse(x, y) })
	for _, r := range recs {
		if err := b.tx.PutOlmSession(r); err != nil {
			return err
		}
	}
	b.changed.Clear()
	return nil
}

// device returns the identity of the device with the Curve25519 key, the
// zero value if none is known, looking it up once per batch.
func (b *toDeviceBatch) device(curve25519 string) (cryptostore.DeviceIdentity, error) {
	if d, ok := b.devices.Get(curve25519); ok {
		return d, nil
	}
	d, err := b.tx.DeviceIdentity(curve25519)
	if errors.Is(err, cryptostore.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return cryptostore.DeviceIdentity{}, err
	}
	b.devices.Set(curve25519, d)
	return d, nil
}

// decryptedOlm is an Olm message that decrypted and passed the plaintext
// checks, with what it came with.
type decryptedOlm struct {
	senderKey string
	plaintext *receivedPlaintext
	device    cryptostore.DeviceIdentity // the sender device; zero if not known
}

// errSeenAfterAll aborts a batch transaction that decrypted a message the
// store had recorded as decrypted before; ReceiveSyncChanges runs the batch
// again, looking the hashes up first.
var errSeenAfterAll = errors.New("machine: a message decrypted before decrypted again")

// lookUpHashes finds, in one statement, which of the batch's messages were
// decrypted before, unless it did already. A batch looks them up before its
// first pre-key message (which a fallback key could decrypt again) and
// before it calls a message undecryptable (it may be a duplicate); a batch
// of normal messages that all decrypt needs no lookup, as the flush finds
// any hash that was recorded after all.
func (b *toDeviceBatch) lookUpHashes() error {
	if b.looked {
		return nil
	}
	b.looked = true
	// Each message is looked up by its hash and by the hash an earlier
	// build recorded for it (cryptostore.LegacyOlmMessageHash).
	var hashes [][32]byte
	legacy := make(map[[32]byte][32]byte) // legacy hash → the event's hash
	for _, ev := range b.events {
		if ev != nil {
			old := cryptostore.LegacyOlmMessageHash(ev.senderKey, int(ev.typ), ev.body)
			hashes = append(hashes, ev.hash, old)
			legacy[old] = ev.hash
		}
	}
	seen, err := b.tx.SeenOlmMessages(hashes)
	if err != nil {
		return err
	}
	// An event the batch decrypted already and finds here was decrypted
	// before after all; flush finds it when it records the hash.
	for h, v := range seen {
		if current, ok := legacy[h]; ok {
			h = current
		}
		b.seen.Set(h, v)
	}
	return nil
}

// duplicate reports whether the event's message was decrypted before: by
// an earlier event of the batch, or (with lookup) by the store.
func (b *toDeviceBatch) duplicate(ev *olmEvent, lookup bool) (bool, error) {
	if seen, _ := b.seen.Get(ev.hash); !seen && lookup {
		if err := b.lookUpHashes(); err != nil {
			return false, err
		}
	}
	seen, _ := b.seen.Get(ev.hash)
	return seen, nil
}

// decryptOlm decrypts an Olm message as the specification orders it,
// checks the plaintext and stages the event's store changes in the batch:
// the session (new or advanced), the one-time key a new session used up
// (removed at once), and the message's hash (written by flush with the
// sessions). Nothing is staged for an event that fails, except what
// unwedging records. A message decrypted before, by the store or by an
// earlier event of the batch, is a duplicate (DESIGN.md invariant 7).
func (b *toDeviceBatch) decryptOlm(ev *olmEvent) (*decryptedOlm, error) {
	if dup, err := b.duplicate(ev, ev.typ == olm.MessageTypePreKey); err != nil || dup {
		return nil, cmp.Or(err, ErrDuplicateOlmMessage)
	}
	senderKey, typ := ev.senderKey, ev.typ
	var try olmAttempt
	switch typ {
	case olm.MessageTypePreKey:
		pre, err := olm.ParsePreKeyMessage(ev.body)
		if err != nil {
			return nil, &MalformedToDeviceError{Field: "content.ciphertext.body", Err: err}
		}
		if try, err = b.decryptPreKey(senderKey, &ev.curve, pre, ev.body); err != nil {
			return nil, err
		}
	default:
		var err error
		if try, err = b.decryptNormal(senderKey, ev.body); err != nil {
			return nil, err
		}
		// A message that decrypted was well formed; one that did not is
		// checked (olm.ParseMessage's check, without its copy), so that a
		// malformed body is reported as such, with or without sessions.
		if try.failure != nil {
			if _, err := wire.DecodeOlmMessage(ev.body); err != nil {
				return nil, &MalformedToDeviceError{Field: "content.ciphertext.body", Err: err}
			}
		}
	}
	if try.failure != nil {
		if dup, err := b.duplicate(ev, true); err != nil || dup {
			return nil, cmp.Or(err, ErrDuplicateOlmMessage)
		}
		unwedging, err := b.m.markWedged(b.tx, ev.sender, senderKey)
		if err != nil {
			return nil, err
		}
		return nil, &SessionWedgedError{SenderKey: senderKey, MessageType: typ, SessionsTried: try.tried,
			Unwedging: unwedging, Err: try.failure}
	}
	defer clear(try.plaintext)

	pt, dev, err := b.checkPlaintext(ev.sender, senderKey, try.plaintext)
	if err != nil {
		return nil, err
	}
	// Every check passed: stage the event's changes.
	try.session.LastUsedAt = b.m.now()
	b.putSession(try.session, try.from)
	if try.account != nil {
		// The account copy already lacks the key; the store drops its row
		// (a fallback key has none and stays).
		if _, err := b.tx.RemoveOneTimeKey(try.oneTimeKey); err != nil {
			return nil, err
		}
		b.account = try.account
	}
	b.seen.Set(ev.hash, true)
	b.decrypted = append(b.decrypted, cryptostore.OlmMessage{Hash: ev.hash, SenderKey: senderKey})
	return &decryptedOlm{senderKey: senderKey, plaintext: pt, device: dev}, nil
}

// olmAttempt is the outcome of trying to decrypt one message: the session
// copy that decrypted it and the plaintext, or the failure.
type olmAttempt struct {
	session    *cryptostore.OlmSessionRecord // a copy, advanced
	from       *cryptostore.OlmSessionRecord // the working copy it was made from; nil for a new session
	plaintext  []byte
	account    *cryptostore.AccountRecord // for a new inbound session: the account copy without its one-time key
	oneTimeKey string                     // the one-time key the new session used
	tried      int
	failure    error
}

// decryptPreKey decrypts a pre-key message with the existing session it
// belongs to, or else with a new inbound session from one of our one-time
// (or fallback) keys. The returned error is a store failure or a reason.
func (b *toDeviceBatch) decryptPreKey(senderKey string, senderCurve *olm.Curve25519PublicKey, pre *olm.PreKeyMessage, body []byte) (olmAttempt, error) {
	sessions, err := b.senderSessions(senderKey)
	if err != nil {
		return olmAttempt{}, err
	}
	for _, r := range sessions {
		if !r.Session.MatchesInboundSession(senderCurve, pre) {
			continue
		}
		// The message belongs to this session: it decrypts with it or not
		// at all (a new session from the same one-time key would be this
		// session again).
		s := cloneSession(r)
		pt, err := s.Session.Decrypt(olm.MessageTypePreKey, body)
		if err != nil {
			return olmAttempt{tried: 1, failure: err}, nil
		}
		return olmAttempt{session: s, from: r, plaintext: pt, tried: 1}, nil
	}
	acct, err := b.accountCopy()
	if err != nil {
		return olmAttempt{}, err
	}
	sess, pt, err := acct.Account.NewInboundSession(senderCurve, pre)
	switch {
	case errors.Is(err, olm.ErrMismatchedIdentityKey):
		return olmAttempt{}, &MalformedToDeviceError{Field: "content.sender_key", Err: err}
	case err != nil:
		return olmAttempt{tried: len(sessions), failure: err}, nil
	}
	now := b.m.now()
	return olmAttempt{
		session:   &cryptostore.OlmSessionRecord{SenderKey: senderKey, Session: sess, CreatedAt: now, LastUsedAt: now},
		plaintext: pt, account: acct, oneTimeKey: pre.OneTimeKey().String(), tried: len(sessions),
	}, nil
}

// decryptNormal tries the sender's sessions, most recently used first, each
// on a copy.
func (b *toDeviceBatch) decryptNormal(senderKey string, body []byte) (olmAttempt, error) {
	sessions, err := b.senderSessions(senderKey)
	if err != nil {
		return olmAttempt{}, err
	}
	failure := ErrNoOlmSession // unless there is a session to fail
	for _, r := range sessions {
		s := cloneSession(r)
		pt, err := s.Session.Decrypt(olm.MessageTypeNormal, body)
		if err == nil {
			return olmAttempt{session: s, from: r, plaintext: pt, tried: len(sessions)}, nil
		}
		failure = err
	}
	return olmAttempt{tried: len(sessions), failure: failure}, nil
}

// senderSessions returns the batch's working copies of the sender's
// sessions, loading them on first use.
func (b *toDeviceBatch) senderSessions(senderKey string) ([]*cryptostore.OlmSessionRecord, error) {
	if recs, ok := b.sessions.Get(senderKey); ok {
		return recs, nil
	}
	recs, err := b.tx.OlmSessions(senderKey)
	if err != nil {
		return nil, err
	}
	b.sessions.Set(senderKey, recs)
	return recs, nil
}

// putSession records a changed session in the working copies in the
// store's order, in place of the copy it was made from (for a new session:
// of a copy with its ID, if any), pruned as the store prunes, and marks it
// for flush.
func (b *toDeviceBatch) putSession(rec, from *cryptostore.OlmSessionRecord) {
	id := rec.Session.ID()
	recs, _ := b.sessions.Get(rec.SenderKey)
	recs = slices.DeleteFunc(recs, func(r *cryptostore.OlmSessionRecord) bool {
		return r == from || from == nil && r.Session.ID() == id
	})
	recs = append(recs, rec)
	slices.SortFunc(recs, compareByUse)
	b.sessions.Set(rec.SenderKey, recs[:min(len(recs), cryptostore.MaxOlmSessionsPerSender)])
	b.changed.Set(id, rec)
}

// compareByUse orders sessions as the store does: last used (in
// milliseconds, as stored) newest first, then by session ID.
func compareByUse(x, y *cryptostore.OlmSessionRecord) int {
	if c := cmp.Compare(y.LastUsedAt.UnixMilli(), x.LastUsedAt.UnixMilli()); c != 0 {
		return c
	}
	return strings.Compare(x.Session.ID(), y.Session.ID())
}

// accountCopy returns a copy of the batch's account for a new inbound
// session to use a one-time key from.
func (b *toDeviceBatch) accountCopy() (*cryptostore.AccountRecord, error) {
	if b.account == nil {
		rec, err := b.tx.Account()
		if err != nil {
			return nil, err
		}
		b.account = rec
	}
	c := *b.account
	c.Account = b.account.Account.Clone()
	return &c, nil
}

func cloneSession(r *cryptostore.OlmSessionRecord) *cryptostore.OlmSessionRecord {
	c := *r
	c.Session = r.Session.Clone()
	return &c
}
