package machine_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/machine"
)

// BenchmarkRoomEncrypt encrypts room events (EncryptRoomEvent: one Synced
// transaction that commits the advanced ratchet before the ciphertext is
// returned) with and without the cache, beside the bare megolm Encrypt and a
// raw Synced commit of the rows the step writes ("raw-commit": the lease
// row's stamp and the session's blob; "raw-commit-no-lease": the blob
// alone). x-bare-commit is the step as a multiple of bare + raw-commit; the
// Synced commit's fsync dominates both.
func BenchmarkRoomEncrypt(b *testing.B) {
	ctx := context.Background()
	floor := newRoomStream(b)
	cached, plain := openMachine(b, storePath(b), false), openMachine(b, storePath(b), true)
	for _, m := range []*machine.Machine{cached, plain} {
		if _, err := m.ShareRoomKey(ctx, room, nil, machine.EncryptionSettings{}); err != nil {
			b.Fatal(err)
		}
	}
	raw := newRawDB(b, len(floor.out.Pickle(storeKey, nil)))
	content := json.RawMessage(`{"msgtype":"m.text","body":"Are we still on for lunch at noon? I can book the usual place."}`)
	encrypt := func(m *machine.Machine) func(b *testing.B) time.Duration {
		return func(b *testing.B) time.Duration {
			return timed(func() {
				if _, err := m.EncryptRoomEvent(ctx, room, "m.room.message", content); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
	per := interleave(b,
		side{Name: "bare", Op: func(b *testing.B) time.Duration {
			return timed(func() {
				if _, err := floor.out.Encrypt(plaintext); err != nil {
					b.Fatal(err)
				}
			})
		}},
		side{Name: "raw-commit", Op: func(b *testing.B) time.Duration {
			return timed(func() { raw.commit(b, sqlitedb.Synced, 0, true) })
		}},
		side{Name: "raw-commit-no-lease", Op: func(b *testing.B) time.Duration {
			return timed(func() { raw.commit(b, sqlitedb.Synced, 0, false) })
		}},
		side{Name: "cache", Op: encrypt(cached)},
		side{Name: "no-cache", Op: encrypt(plain)},
	)
	bare, commit, commitNoLease, cache, noCache := per[0], per[1], per[2], per[3], per[4]
	b.ReportMetric(cache, "ns/op")
	b.ReportMetric(cache/bare, "x-bare")
	b.ReportMetric(cache/(bare+commit), "x-bare-commit")
	b.ReportMetric(cache/(bare+commitNoLease), "x-bare-commit-no-lease")
	b.ReportMetric(noCache/cache, "no-cache-x-cache")
}
