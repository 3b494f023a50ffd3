package store_test

import (
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
)

// BenchmarkCommitDurability commits the rows of one receive step (the
// advanced Olm session and the message hash) with Normal durability, then
// the same rows with Synced, which fsyncs the WAL before Update returns,
// alternating blocks of each (a switch costs one pragma, amortized). x-normal is what a Synced commit costs as a multiple of a Normal one: the
// price of committing a send step (whose ratchet must never roll back after
// its ciphertext left) before returning it, paid only there.
func BenchmarkCommitDurability(b *testing.B) {
	c := newConversation(b)
	path := storePath(b)
	s := openStore(b, path, false)
	putSession(b, s, path, c)
	var n uint64
	step := func(dur cryptostore.Durability) func(b *testing.B) {
		return func(b *testing.B) {
			n++
			update(b, s, dur, func(tx *cryptostore.Tx) error {
				recs, err := tx.OlmSessions(c.sender)
				if err != nil {
					return err
				}
				recs[0].LastUsedAt = time.Now()
				if err := tx.PutOlmSession(recs[0]); err != nil {
					return err
				}
				return tx.AddOlmMessage(hashN(n), c.sender)
			})
		}
	}
	paired(b, "normal", step(cryptostore.Normal), benchCase{"synced", step(cryptostore.Synced), nil})
}
