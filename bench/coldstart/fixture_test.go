package coldstart_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// The fixture's size: what a long-lived account accumulates.
const (
	bulkOlmSessions   = 10_000
	bulkSenderKeys    = 2_500 // 4 sessions per peer device
	bulkGroupSessions = 100_000
	bulkRooms         = 500
	rowsPerUpdate     = 5_000
)

// fixtureVersion names the cached fixture; change it whenever what the
// fixture holds changes. The store's schema version is part of the name
// (fixtureDir): a fixture of an older schema would be migrated, a write, by
// the first child to open it.
const fixtureVersion = "v2-olm10000-megolm100000"

// storeKey seals the fixture; the child reads it from stdin.
var storeKey = [32]byte{0xc0, 0x1d, 0x57, 0xa2, 0x75}

const (
	aliceUser   = "@alice:example.org"
	aliceDevice = "ALICEPHONE"
	bobUser     = "@bob:example.org"
	bobDevice   = "BOBLAPTOP"
	benchRoom   = "!coldstart:example.org"
)

// fixture is a built store and the events the child decrypts from it.
type fixture struct {
	dir    string // holds storeFile and eventsFile
	events string // path of the events file
}

const (
	storeFile  = "crypto.db"
	eventsFile = "events.json"
)

// fixtureDir is where the fixture is cached between runs.
func fixtureDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("xolm-coldstart-%s-schema%d", fixtureVersion, cryptostore.SchemaVersion))
}

// loadFixture returns the cached fixture, building it (into a fresh
// directory renamed into place) when it is missing or rebuild is set.
func loadFixture(b *testing.B, rebuild bool) *fixture {
	b.Helper()
	dir := fixtureDir()
	f := &fixture{dir: dir, events: filepath.Join(dir, eventsFile)}
	if !rebuild {
		if _, err := os.Stat(f.events); err == nil {
			return f
		}
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "xolm-coldstart-build-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	if err := buildFixture(tmp, bulkOlmSessions, bulkGroupSessions); err != nil {
		b.Fatal(err)
	}
	b.Logf("built the fixture in %v", time.Since(start).Round(time.Millisecond))
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		b.Fatal(err)
	}
	return f
}

// estimateBuild builds a small fixture and extrapolates the full build's
// time from it.
func estimateBuild(b *testing.B) time.Duration {
	b.Helper()
	const olmSample, groupSample = 200, 2_000
	start := time.Now()
	if err := buildFixture(b.TempDir(), olmSample, groupSample); err != nil {
		b.Fatal(err)
	}
	per := time.Since(start) / (olmSample + groupSample)
	return per * (bulkOlmSessions + bulkGroupSessions)
}

// buildFixture writes Alice's store into dir, with olmSessions bulk Olm
// sessions and groupSessions bulk inbound group sessions, and Bob: a known
// device with a live Olm session and a shared Megolm session. The events file
// holds Bob's next to-device event (a normal Olm message carrying an
// m.room_key) and a room event in the shared session.
func buildFixture(dir string, olmSessions, groupSessions int) error {
	ctx := context.Background()
	s, err := cryptostore.Open(ctx, filepath.Join(dir, storeFile), cryptostore.Options{Key: &storeKey, Role: "app"})
	if err != nil {
		return err
	}
	defer s.Close()
	m, err := machine.Open(ctx, s, aliceUser, aliceDevice, machine.Options{})
	if err != nil {
		return err
	}
	if err := addBulkOlmSessions(ctx, s, olmSessions); err != nil {
		return err
	}
	if err := addBulkGroupSessions(ctx, s, groupSessions); err != nil {
		return err
	}
	ev, err := addBob(ctx, m)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, eventsFile), raw, 0o600)
}

// randomCurveKey is a Curve25519 public key of random bytes: enough for a
// session that is stored, never used.
func randomCurveKey() (olm.Curve25519PublicKey, error) {
	var k [32]byte
	rand.Read(k[:])
	return olm.ParseCurve25519PublicKey(b64.Encode(k[:]))
}

// inBatches runs put for rows 0..n-1 in transactions of rowsPerUpdate rows.
func inBatches(ctx context.Context, s *cryptostore.Store, n int, put func(tx *cryptostore.Tx, i int) error) error {
	for lo := 0; lo < n; lo += rowsPerUpdate {
		hi := min(lo+rowsPerUpdate, n)
		err := s.Update(ctx, "fixture", cryptostore.Normal, func(tx *cryptostore.Tx) error {
			for i := lo; i < hi; i++ {
				if err := put(tx, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// addBulkOlmSessions stores n real outbound sessions from Alice's account to
// bulkSenderKeys peer identity keys, each with a fresh one-time key.
func addBulkOlmSessions(ctx context.Context, s *cryptostore.Store, n int) error {
	var acct *olm.Account
	err := s.View(ctx, "fixture", func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err == nil {
			acct = rec.Account
		}
		return err
	})
	if err != nil {
		return err
	}
	peers := make([]olm.Curve25519PublicKey, min(n, bulkSenderKeys))
	for i := range peers {
		if peers[i], err = randomCurveKey(); err != nil {
			return err
		}
	}
	used := time.Now().Add(-24 * time.Hour)
	return inBatches(ctx, s, n, func(tx *cryptostore.Tx, i int) error {
		peer := peers[i%len(peers)]
		otk, err := randomCurveKey()
		if err != nil {
			return err
		}
		sess, err := acct.NewOutboundSession(rand.Reader, peer, otk)
		if err != nil {
			return err
		}
		at := used.Add(time.Duration(i) * time.Second)
		return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: peer.String(), Session: sess,
			CreatedAt: at, LastUsedAt: at})
	})
}

// addBulkGroupSessions stores n inbound group sessions spread over
// bulkRooms rooms.
func addBulkGroupSessions(ctx context.Context, s *cryptostore.Store, n int) error {
	senders := make([]string, min(n, bulkSenderKeys))
	for i := range senders {
		k, err := randomCurveKey()
		if err != nil {
			return err
		}
		senders[i] = k.String()
	}
	imported := time.Now().Add(-24 * time.Hour)
	return inBatches(ctx, s, n, func(tx *cryptostore.Tx, i int) error {
		out, err := megolm.NewOutboundGroupSession(rand.Reader)
		if err != nil {
			return err
		}
		in, err := megolm.NewInboundGroupSession(out.SessionKey())
		if err != nil {
			return err
		}
		_, err = tx.PutInboundGroupSession(&cryptostore.InboundGroupSessionRecord{
			RoomID:    fmt.Sprintf("!room%04d:example.org", i%bulkRooms),
			SenderKey: senders[i%len(senders)], SigningKey: out.SigningKey().String(),
			Session: in, ImportedAt: imported})
		return err
	})
}
