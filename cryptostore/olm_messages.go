package cryptostore

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/xolm/xolm/internal/wire"
)

// OlmMessageHash identifies a decrypted Olm message. It is 32 bytes laid out
// so that a sending chain's messages sit next to each other in the hash
// table, whose rows are ordered by it: a batch of a chain's messages then
// changes a few pages of the table instead of one page per message, which
// is what a commit of random keys costs. In order:
//
//   - the first 4 bytes of the sender's key (as given, base64): the sender;
//   - the first 4 bytes of the message's ratchet key (for a pre-key
//     message, its inner message's): the sending chain;
//   - the chain index, 4 bytes big-endian: the message's place in it;
//   - the first 20 bytes of SHA-256 over the sender's key, the message type
//     and the body: what identifies the message.
//
// A body that does not parse has zeros for ratchet key and chain index. The
// grouping bytes are the sender's to choose and only place the row; two
// messages share a hash only if their SHA-256 prefixes collide.
func OlmMessageHash(senderKey string, msgType int, body []byte) [32]byte {
	var sum [32]byte
	copy(sum[:4], senderKey)
	if ratchetKey, index, ok := olmChainPosition(msgType, body); ok {
		copy(sum[4:8], ratchetKey)
		binary.BigEndian.PutUint32(sum[8:12], index)
	}
	digest := LegacyOlmMessageHash(senderKey, msgType, body)
	copy(sum[12:], digest[:])
	return sum
}

// LegacyOlmMessageHash is the hash of a decrypted Olm message as builds
// before the layout of [OlmMessageHash] recorded it: the whole SHA-256 over
// the sender's key, the message type and the body. A store upgraded in
// place holds such hashes until PruneOlmMessages forgets them, so a message
// that is not known by its hash must be looked up by this one too before it
// is called undecryptable (DESIGN.md invariant 7).
func LegacyOlmMessageHash(senderKey string, msgType int, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(senderKey))
	h.Write([]byte{0, byte(msgType), 0})
	h.Write(body)
	var digest [32]byte
	h.Sum(digest[:0])
	return digest
}

// olmChainPosition returns the ratchet key and chain index of a normal
// message, or of the normal message inside a pre-key message.
func olmChainPosition(msgType int, body []byte) ([]byte, uint32, bool) {
	if msgType == 0 {
		pre, err := wire.DecodePreKeyMessage(body)
		if err != nil {
			return nil, 0, false
		}
		body = pre.Message
	}
	m, err := wire.DecodeOlmMessage(body)
	if err != nil {
		return nil, 0, false
	}
	return m.RatchetKey[:], m.ChainIndex, true
}

// SeenOlmMessage reports whether a message with this hash was decrypted
// before: a second copy (the other process saw the same to-device batch) is a
// duplicate, not a wedged session (DESIGN.md invariant 7).
func (t *Tx) SeenOlmMessage(hash [32]byte) (bool, error) {
	var n int
	err := t.tx.QueryRow(`SELECT count(*) FROM olm_message_hashes WHERE hash = ?`, hash[:]).Scan(&n)
	return n > 0, err
}

// AddOlmMessage records a decrypted message's hash, in the transaction that
// commits the session change its decryption made.
func (t *Tx) AddOlmMessage(hash [32]byte, senderKey string) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	_, err := t.tx.Exec(`INSERT INTO olm_message_hashes (hash, sender_key, received_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, hash[:], senderKey, t.s.nowMillis())
	if err != nil {
		return fmt.Errorf("cryptostore: add olm message hash: %w", err)
	}
	return nil
}

// OlmMessage is a decrypted message's hash and its sender's key, as
// [Tx.AddOlmMessages] records them.
type OlmMessage struct {
	Hash      [32]byte
	SenderKey string
}

// batchChunks are the numbers of rows one statement of a batch method
// ([Tx.SeenOlmMessages], [Tx.AddOlmMessages], [Tx.MegolmIndexUses],
// [Tx.AddMegolmIndexUses]) takes, largest first: fixed, so that each shape is
// one cached prepared statement. A batch is taken in the largest chunks that
// fit; 100 (a sync response's to-device events as Synapse sends them, or a
// timeline page) is one statement.
var batchChunks = [...]int{100, 30, 10, 3, 1}

// batchChunk returns how many of n remaining rows the next statement takes.
func batchChunk(n int) int {
	for _, c := range batchChunks {
		if c <= n {
			return c
		}
	}
	return n
}

// seenOlmSQL and addOlmSQL hold the statements for each chunk size.
var seenOlmSQL, addOlmSQL = olmHashStatements()

func olmHashStatements() (seen, add map[int]string) {
	seen, add = make(map[int]string), make(map[int]string)
	for _, n := range batchChunks {
		seen[n] = `SELECT hash FROM olm_message_hashes WHERE hash IN (?` + strings.Repeat(", ?", n-1) + `)`
		add[n] = `INSERT INTO olm_message_hashes (hash, sender_key, received_at) VALUES (?, ?, ?)` +
			strings.Repeat(", (?, ?, ?)", n-1) + ` ON CONFLICT DO NOTHING`
	}
	return seen, add
}

// SeenOlmMessages reports which of the hashes were decrypted before, as
// [Tx.SeenOlmMessage] does for one, in one statement per 100 hashes (a few
// for a number that is not a chunk size). The returned set holds the hashes
// found.
func (t *Tx) SeenOlmMessages(hashes [][32]byte) (map[[32]byte]bool, error) {
	seen := make(map[[32]byte]bool)
	for len(hashes) > 0 {
		n := batchChunk(len(hashes))
		args := make([]any, n)
		for i := range args {
			args[i] = hashes[i][:]
		}
		hashes = hashes[n:]
		rows, err := t.tx.Query(seenOlmSQL[n], args...)
		if err != nil {
			return nil, fmt.Errorf("cryptostore: seen olm messages: %w", err)
		}
		for rows.Next() {
			var h []byte
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, err
			}
			if len(h) == 32 { // as every argument is
				seen[[32]byte(h)] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return seen, nil
}

// AddOlmMessages records the hashes of decrypted messages, as
// [Tx.AddOlmMessage] does for one, in one statement per 100 messages (a few
// for a number that is not a chunk size); a hash already recorded is left as
// it is. It returns how many of the hashes were new: fewer than given means
// some message was decrypted before.
func (t *Tx) AddOlmMessages(msgs []OlmMessage) (added int, err error) {
	if err := t.checkWrite(); err != nil {
		return 0, err
	}
	now := t.s.nowMillis()
	for len(msgs) > 0 {
		n := batchChunk(len(msgs))
		args := make([]any, 0, 3*n)
		for i := range n {
			args = append(args, msgs[i].Hash[:], msgs[i].SenderKey, now)
		}
		msgs = msgs[n:]
		res, err := t.tx.Exec(addOlmSQL[n], args...)
		if err != nil {
			return added, fmt.Errorf("cryptostore: add olm message hashes: %w", err)
		}
		rows, err := res.RowsAffected()
		if err != nil {
			return added, fmt.Errorf("cryptostore: add olm message hashes: %w", err)
		}
		added += int(rows)
	}
	return added, nil
}

// PruneOlmMessages forgets at most limit message hashes recorded more than
// olderThan ago, and returns how many it forgot. Peers stop resending a
// to-device message once it was delivered, so old hashes only cost space.
// The hashes have no index by age (one would cost every decrypted message a
// page write): this reads the whole table, so run it seldom, as
// machine.Maintain does.
func (t *Tx) PruneOlmMessages(olderThan time.Duration, limit int) (int64, error) {
	if err := t.checkWrite(); err != nil {
		return 0, err
	}
	res, err := t.tx.Exec(`DELETE FROM olm_message_hashes WHERE hash IN
		(SELECT hash FROM olm_message_hashes WHERE received_at < ? LIMIT ?)`,
		t.s.now().Add(-olderThan).UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("cryptostore: prune olm message hashes: %w", err)
	}
	return res.RowsAffected()
}

// LastUnwedged returns when the sender device was last sent a new session to
// recover from an undecryptable message, or the zero time.
func (t *Tx) LastUnwedged(senderKey string) (time.Time, error) {
	var at int64
	err := t.tx.QueryRow(`SELECT at FROM olm_unwedged WHERE sender_key = ?`, senderKey).Scan(&at)
	if err := noRows(err); err == ErrNotFound {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(at), nil
}

// SetUnwedged records that the sender device was sent a new session now.
func (t *Tx) SetUnwedged(senderKey string) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	_, err := t.tx.Exec(`INSERT INTO olm_unwedged (sender_key, at) VALUES (?, ?)
		ON CONFLICT (sender_key) DO UPDATE SET at = excluded.at`, senderKey, t.s.nowMillis())
	return err
}
