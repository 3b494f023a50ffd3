package cryptostore

import (
	"crypto/sha256"
	"fmt"
	"time"
)

// OlmMessageHash identifies a decrypted Olm message: SHA-256 over the
// sender's key, the message type and the ciphertext.
func OlmMessageHash(senderKey string, msgType int, body []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(senderKey))
	h.Write([]byte{0, byte(msgType), 0})
	h.Write(body)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
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

// PruneOlmMessages forgets message hashes older than d. Peers stop resending
// a to-device message once it was delivered, so old hashes only cost space.
func (t *Tx) PruneOlmMessages(olderThan time.Duration) (int64, error) {
	if err := t.checkWrite(); err != nil {
		return 0, err
	}
	res, err := t.tx.Exec(`DELETE FROM olm_message_hashes WHERE received_at < ?`,
		t.s.now().Add(-olderThan).UnixMilli())
	if err != nil {
		return 0, err
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
