package store_test

import (
	"crypto/rand"
	"database/sql"
	"testing"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/olm"
)

// BenchmarkOlmSessionRead reads an Olm session for decryption, as a receive
// step does first, from the cache ("cache-hit": a read transaction that
// checks the lease generation, then a clone) and with the cache off
// ("no-cache": the same transaction, a SELECT through the sender index,
// the AEAD open and the unpickle), beside the raw floor ("raw-select": a
// SELECT of a blob of the same size by primary key, in a read transaction on
// the same kind of connection). x-raw is each as a multiple of the floor;
// the target for no-cache is under 2.
func BenchmarkOlmSessionRead(b *testing.B) {
	c := newConversation(b)
	cachedPath, plainPath := storePath(b), storePath(b)
	cached := openStore(b, cachedPath, false)
	plain := openStore(b, plainPath, true)
	size := putSession(b, cached, cachedPath, c)
	putSession(b, plain, plainPath, c)
	raw := newRawDB(b, size)
	read := func(s *cryptostore.Store) func(b *testing.B) {
		view(b, s, func(tx *cryptostore.Tx) error { _, err := tx.OlmSessions(c.sender); return err }) // warm
		return func(b *testing.B) {
			view(b, s, func(tx *cryptostore.Tx) error {
				recs, err := tx.OlmSessions(c.sender)
				if err == nil && (len(recs) != 1 || recs[0].Session.ID() != c.mine.ID()) {
					b.Fatal("wrong session read")
				}
				return err
			})
		}
	}
	blob := map[string]float64{"blob-bytes": float64(size)}
	paired(b, "raw",
		func(b *testing.B) {
			if len(raw.readBlob(b)) != size {
				b.Fatal("short blob")
			}
		},
		benchCase{"cache-hit", read(cached), blob},
		benchCase{"no-cache", read(plain), blob},
	)
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
