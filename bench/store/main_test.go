// Package store_test measures the crypto store end to end, as ratios taken
// in one run: reading an Olm session for decryption from the cache and from
// SQLite beside a raw SELECT of a blob of the same size, what the lease's
// generation check adds to every transaction, and a Synced commit beside a
// Normal one.
// Run with: go test -run '^$' -bench . ./bench/store
package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/olm"
)

var storeKey = &[32]byte{0x5e, 0x55, 0x10, 0x45}

func openStore(b *testing.B, path string, noCache bool) *cryptostore.Store {
	b.Helper()
	s, err := cryptostore.Open(context.Background(), path, cryptostore.Options{Key: storeKey, Role: "bench", NoCache: noCache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func update(b *testing.B, s *cryptostore.Store, dur cryptostore.Durability, fn func(tx *cryptostore.Tx) error) {
	if err := s.Update(context.Background(), "bench", dur, fn); err != nil {
		b.Fatal(err)
	}
}

func view(b *testing.B, s *cryptostore.Store, fn func(tx *cryptostore.Tx) error) {
	if err := s.View(context.Background(), "bench", fn); err != nil {
		b.Fatal(err)
	}
}

// conversation is an Olm session as a store holds it after a short exchange
// (its receiving and sending chains both in use, a few skipped message keys
// kept), with the peer's side to go on with.
type conversation struct {
	mine   *olm.Session
	peer   *olm.Session
	sender string
}

// exchanges and skipped shape the session of newConversation.
const (
	exchanges = 3
	skipped   = 4
)

func newConversation(b *testing.B) conversation {
	b.Helper()
	alice, _ := olm.NewAccount(rand.Reader)
	bob, _ := olm.NewAccount(rand.Reader)
	bob.GenerateOneTimeKeys(rand.Reader, 1)
	out, err := alice.NewOutboundSession(rand.Reader, bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key)
	if err != nil {
		b.Fatal(err)
	}
	_, body, _ := out.Encrypt(rand.Reader, []byte("hello"))
	pre, _ := olm.ParsePreKeyMessage(body)
	in, _, err := bob.NewInboundSession(nil, pre)
	if err != nil {
		b.Fatal(err)
	}
	c := conversation{mine: in, peer: out, sender: alice.IdentityKeys().Curve25519.String()}
	for range exchanges {
		c.send(b, c.mine, c.peer)
		c.send(b, c.peer, c.mine)
	}
	for range skipped { // lost on the way: their keys stay in mine
		c.peer.Encrypt(rand.Reader, []byte("lost"))
	}
	c.send(b, c.peer, c.mine)
	return c
}

// send encrypts a message from one side and decrypts it on the other.
func (conversation) send(b *testing.B, from, to *olm.Session) {
	b.Helper()
	typ, body, err := from.Encrypt(rand.Reader, []byte("a to-device event of typical size, a room key for instance"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := to.Decrypt(typ, body); err != nil {
		b.Fatal(err)
	}
}

// putSession stores the conversation's session in s and returns the size of
// its sealed row, read back with a plain connection.
func putSession(b *testing.B, s *cryptostore.Store, path string, c conversation) int {
	b.Helper()
	now := time.Now()
	update(b, s, cryptostore.Normal, func(tx *cryptostore.Tx) error {
		return tx.PutOlmSession(&cryptostore.OlmSessionRecord{SenderKey: c.sender, Session: c.mine.Clone(), CreatedAt: now, LastUsedAt: now})
	})
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT length(blob) FROM olm_sessions WHERE session_id = ?`, c.mine.ID()).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func storePath(b *testing.B) string { return filepath.Join(b.TempDir(), "crypto.db") }
