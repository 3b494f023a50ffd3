package machine

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// BenchmarkReceiveSyncChanges measures normal Olm to-device messages
// decrypted through ReceiveSyncChanges over an on-disk store, in batches of
// 100 and one at a time, with the cache on and off, beside the bare
// Session.Decrypt of the same messages in the same run. It reports
// nanoseconds per event for both and their ratio (x-bare).
func BenchmarkReceiveSyncChanges(b *testing.B) {
	for _, noCache := range []bool{false, true} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("cache=%t/batch=%d", !noCache, batch), func(b *testing.B) {
				benchReceive(b, batch, noCache)
			})
		}
	}
}

func benchReceive(b *testing.B, batch int, noCache bool) {
	clock := newStepClock()
	alice := newTDPeer(b, "@alice:example.org", "ALICE", clock)
	s, err := cryptostore.Open(context.Background(), filepath.Join(b.TempDir(), "crypto.db"),
		cryptostore.Options{Key: testStoreKey, Role: "app", Now: clock.Now, NoCache: noCache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m, err := Open(context.Background(), s, "@bob:example.org", "BOB", Options{Now: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	bob := &tdPeer{Machine: m, clock: clock}
	bob.keysJSON = bob.signedDeviceKeys(b)
	introducePeers(b, alice, bob)
	olmConnect(b, alice, bob)
	wantDecrypted(b, bob.receive(b, olmSend(b, alice, bob, "m.test", `{}`))[0], alice, "m.test", `{}`)
	wantDecrypted(b, alice.receive(b, olmSend(b, bob, alice, "m.test", `{}`))[0], bob, "m.test", `{}`)

	// Alice's and Bob's sessions, in memory: Alice encrypts each round's
	// messages; Bob's copy decrypts them bare.
	var sender, bare *olm.Session
	alice.store.View(context.Background(), "bench", func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(bob.ids.Curve25519.String())
		sender = recs[0].Session
		return err
	})
	bob.store.View(context.Background(), "bench", func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(alice.ids.Curve25519.String())
		bare = recs[0].Session
		return err
	})
	payload := olmPayload(alice, bob, nil)

	var bareTime, machineTime time.Duration
	events := 0
	bodies := make([][]byte, batch)
	raws := make([]json.RawMessage, batch)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for i := range batch {
			typ, body, err := sender.Encrypt(alice.rand, []byte(payload))
			if err != nil || typ != olm.MessageTypeNormal {
				b.Fatal(typ, err)
			}
			bodies[i] = body
			content, _ := json.Marshal(olmContent{Algorithm: OlmAlgorithm, SenderKey: alice.ids.Curve25519.String(),
				Ciphertext: map[string]olmCiphertext{bob.ids.Curve25519.String(): {Type: 1, Body: b64.Encode(body)}}})
			raws[i] = toDeviceEvent(alice.userID, EventRoomEncrypted, content)
		}
		start := time.Now()
		for _, body := range bodies {
			if _, err := bare.Decrypt(olm.MessageTypeNormal, body); err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		res, err := bob.ReceiveSyncChanges(context.Background(), SyncChanges{ToDeviceEvents: raws})
		end := time.Now()
		b.StartTimer()
		if err != nil || res[batch-1].Err != nil {
			b.Fatal(err, res[batch-1].Err)
		}
		bareTime += mid.Sub(start)
		machineTime += end.Sub(mid)
		events += batch
	}
	b.ReportMetric(float64(bareTime.Nanoseconds())/float64(events), "bare-ns/event")
	b.ReportMetric(float64(machineTime.Nanoseconds())/float64(events), "machine-ns/event")
	b.ReportMetric(float64(machineTime)/float64(bareTime), "x-bare")
}
