package cryptostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"github.com/xolm/xolm/internal/sqlitedb"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

var testKey = &[32]byte{0x42, 1, 2, 3}

func openAt(t testing.TB, path, role string, mod ...func(*Options)) *Store {
	t.Helper()
	opts := Options{Key: testKey, Role: role}
	for _, m := range mod {
		m(&opts)
	}
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tempStore(t testing.TB, mod ...func(*Options)) (*Store, string) {
	path := filepath.Join(t.TempDir(), "crypto.db")
	return openAt(t, path, "app", mod...), path
}

func update(t testing.TB, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), "test", Normal, fn); err != nil {
		t.Fatal(err)
	}
}

// sessionPair returns an Olm session and the peer's session, with the peer's
// Curve25519 key, after one pre-key message.
func sessionPair(t testing.TB) (mine, theirs *olm.Session, theirKey string) {
	t.Helper()
	alice, _ := olm.NewAccount(rand.Reader)
	bob, _ := olm.NewAccount(rand.Reader)
	bob.GenerateOneTimeKeys(rand.Reader, 1)
	out, err := alice.NewOutboundSession(rand.Reader, bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := out.Encrypt(rand.Reader, []byte("hi"))
	pre, _ := olm.ParsePreKeyMessage(body)
	in, _, err := bob.NewInboundSession(nil, pre)
	if err != nil {
		t.Fatal(err)
	}
	return in, out, alice.IdentityKeys().Curve25519.String()
}

// dump returns every row of every table, for byte-for-byte comparisons.
func dump(t testing.TB, path string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out bytes.Buffer
	names, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		names.Scan(&n)
		tables = append(tables, n)
	}
	names.Close()
	for _, tbl := range tables {
		if tbl == "xprocess_lease" {
			continue // the lease row changes with every acquisition by design
		}
		rows, err := db.Query(`SELECT * FROM "` + tbl + `" ORDER BY 1, 2`)
		if err != nil {
			rows, err = db.Query(`SELECT * FROM "` + tbl + `" ORDER BY 1`)
			if err != nil {
				t.Fatal(err)
			}
		}
		cols, _ := rows.Columns()
		out.WriteString(tbl + "\n")
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			rows.Scan(ptrs...)
			for _, v := range vals {
				fmt.Fprintf(&out, "%T:%v|", v, v)
			}
			out.WriteByte('\n')
		}
		rows.Close()
	}
	return out.Bytes()
}

func TestOpenCreatesAndReopens(t *testing.T) {
	s, path := tempStore(t)
	var v int
	s.db.Read(context.Background(), "v", func(tx *sqlitedb.Tx) error { return tx.QueryRow("PRAGMA user_version").Scan(&v) })
	if v != SchemaVersion {
		t.Fatalf("user_version %d", v)
	}
	s.Close()
	openAt(t, path, "app")
}

func TestOpenRefusesNewerSchemaUntouched(t *testing.T) {
	s, path := tempStore(t)
	s.db.Write(context.Background(), "bump", Normal, func(tx *sqlitedb.Tx) error {
		_, err := tx.Exec("PRAGMA user_version = 99")
		return err
	})
	s.Close()
	before, _ := os.ReadFile(path)
	_, err := Open(context.Background(), path, Options{Key: testKey, Role: "app"})
	var tooNew *SchemaTooNewError
	if !errors.As(err, &tooNew) || tooNew.Found != 99 || tooNew.Supported != SchemaVersion {
		t.Fatalf("err = %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("file changed")
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, []byte("this is not a database, and it is long enough"), 0o600)
	if _, err := Open(context.Background(), junk, Options{Key: testKey, Role: "app"}); !errors.Is(err, ErrNotStore) {
		t.Fatalf("junk: %v", err)
	}
	if b, _ := os.ReadFile(junk); string(b) != "this is not a database, and it is long enough" {
		t.Fatal("junk overwritten")
	}
	// A SQLite header over garbage: a corrupt file is a typed error and is
	// left exactly as it was.
	corrupt := filepath.Join(dir, "corrupt.db")
	garbage := append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xA5}, 8192)...)
	os.WriteFile(corrupt, garbage, 0o600)
	if _, err := Open(context.Background(), corrupt, Options{Key: testKey, Role: "app"}); !errors.Is(err, ErrNotStore) {
		t.Fatalf("corrupt: %v", err)
	}
	if b, _ := os.ReadFile(corrupt); !bytes.Equal(b, garbage) {
		t.Fatal("corrupt file changed")
	}
	other := filepath.Join(dir, "other.db")
	db, _ := sql.Open("sqlite", other)
	db.Exec("CREATE TABLE notes(x)")
	db.Close()
	before, _ := os.ReadFile(other)
	if _, err := Open(context.Background(), other, Options{Key: testKey, Role: "app"}); !errors.Is(err, ErrNotStore) {
		t.Fatalf("other database: %v", err)
	}
	if after, _ := os.ReadFile(other); !bytes.Equal(before, after) {
		t.Fatal("other database changed")
	}
}

// A store in a directory the process may not write is a typed error, for a
// new store and for an existing one, and an existing file is left as it was.
// Root ignores directory permissions, so as root the test runs itself again
// as an unprivileged user.
func TestOpenReadOnlyDirectoryIsTypedError(t *testing.T) {
	if dir := os.Getenv("XOLM_TEST_RO_DIR"); dir != "" {
		checkReadOnlyDir(t, dir)
		return
	}
	dir, err := os.MkdirTemp("", "xolm-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755); os.RemoveAll(dir) })
	openAt(t, filepath.Join(dir, "existing.db"), "app").Close()
	os.Remove(filepath.Join(dir, "existing.db-wal"))
	os.Remove(filepath.Join(dir, "existing.db-shm"))
	os.RemoveAll(filepath.Join(dir, "existing.db.holders"))
	os.Remove(filepath.Join(dir, "existing.db.lease"))
	os.Chmod(filepath.Join(dir, "existing.db"), 0o444)
	if os.Geteuid() != 0 {
		os.Chmod(dir, 0o555)
		checkReadOnlyDir(t, dir)
		return
	}
	// Copy the test binary where the unprivileged user can run it.
	self, _ := os.ReadFile(os.Args[0])
	bin := filepath.Join(dir, "self.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o555)
	cmd := exec.Command(bin, "-test.run=^TestOpenReadOnlyDirectoryIsTypedError$", "-test.v")
	cmd.Env = append(os.Environ(), "XOLM_TEST_RO_DIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("unprivileged run: %v\n%s", err, out)
	}
}

func checkReadOnlyDir(t *testing.T, dir string) {
	for _, name := range []string{"new.db", "existing.db"} {
		path := filepath.Join(dir, name)
		before, _ := os.ReadFile(path)
		_, err := Open(context.Background(), path, Options{Key: testKey, Role: "app"})
		if !errors.Is(err, ErrOpen) {
			t.Fatalf("%s: err = %v, want ErrOpen", name, err)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Fatalf("%s changed", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new.db")); !os.IsNotExist(err) {
		t.Fatal("a store file appeared in a read-only directory")
	}
}

// Invariant 11: one-time keys live in rows of their own, the ID counter is
// committed with them, and a used key's row is erased.
func TestInvariant11AccountAndOneTimeKeyRows(t *testing.T) {
	s, _ := tempStore(t)
	acct, _ := olm.NewAccount(rand.Reader)
	acct.GenerateOneTimeKeys(rand.Reader, 5)
	update(t, s, func(tx *Tx) error {
		return tx.PutAccount(&AccountRecord{UserID: "@a:x", DeviceID: "D", Account: acct})
	})
	var rows int
	s.db.Read(context.Background(), "n", func(tx *sqlitedb.Tx) error { return tx.QueryRow("SELECT count(*) FROM one_time_keys").Scan(&rows) })
	if rows != 5 {
		t.Fatalf("%d one-time key rows", rows)
	}
	used := acct.OneTimeKeys()[2].Key.String()
	update(t, s, func(tx *Tx) error {
		ok, err := tx.RemoveOneTimeKey(used)
		if !ok {
			t.Error("key not removed")
		}
		return err
	})
	update(t, s, func(tx *Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		if n := len(rec.Account.AllOneTimeKeys()); n != 4 {
			t.Errorf("%d keys after removal", n)
		}
		rec.Account.MarkKeysAsPublished()
		if err := rec.Account.GenerateOneTimeKeys(rand.Reader, 2); err != nil {
			return err
		}
		return tx.PutAccount(rec)
	})
	s.Invalidate()
	s.View(context.Background(), "check", func(tx *Tx) error {
		rec, err := tx.Account()
		if err != nil {
			t.Fatal(err)
		}
		keys := rec.Account.AllOneTimeKeys()
		if len(keys) != 6 || keys[0].ID != 7 || keys[0].Published || !keys[2].Published {
			t.Errorf("keys after reload: %+v", keys)
		}
		return nil
	})
}

func TestOlmSessionsMostRecentFirstAndPruned(t *testing.T) {
	s, path := tempStore(t)
	_, _, sender := sessionPair(t)
	base := time.Unix(1_700_000_000, 0)
	var ids []string
	for i := 0; i < MaxOlmSessionsPerSender+2; i++ {
		in, _, _ := sessionPair(t)
		ids = append(ids, in.ID())
		update(t, s, func(tx *Tx) error {
			return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: in,
				CreatedAt: base, LastUsedAt: base.Add(time.Duration(i) * time.Second)})
		})
	}
	check := func(tx *Tx) error {
		recs, err := tx.OlmSessions(sender)
		if err != nil {
			return err
		}
		if len(recs) != MaxOlmSessionsPerSender || recs[0].Session.ID() != ids[len(ids)-1] {
			t.Errorf("%d sessions, first %s", len(recs), recs[0].Session.ID())
		}
		return nil
	}
	s.View(context.Background(), "cached", check)
	s.Invalidate()
	s.View(context.Background(), "fresh", check)
	// The pruned sessions are older than every live one: restoring one would
	// take the sender past the limit with a session that would be archived
	// again at once, so nothing is restored and nothing changes.
	before := dump(t, path)
	update(t, s, func(tx *Tx) error {
		ok, err := tx.RestoreOlmSession(ids[0])
		if err != nil || ok {
			t.Errorf("restore of a session older than the live ones: %v %v", ok, err)
		}
		return err
	})
	if !bytes.Equal(before, dump(t, path)) {
		t.Fatal("a refused restore changed the store")
	}
	// An archived session more recently used than the oldest live one comes
	// back, and the least recently used live one (in, below) is archived: the
	// sender stays at the limit.
	newest := ids[len(ids)-1]
	update(t, s, func(tx *Tx) error { return tx.ArchiveOlmSession(sender, newest) })
	in, _, _ := sessionPair(t)
	update(t, s, func(tx *Tx) error {
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: in, CreatedAt: base, LastUsedAt: base})
	})
	update(t, s, func(tx *Tx) error {
		ok, err := tx.RestoreOlmSession(newest)
		if err != nil || !ok {
			t.Errorf("restore: %v %v", ok, err)
		}
		return err
	})
	for _, view := range []string{"cached", "fresh"} {
		if view == "fresh" {
			s.Invalidate()
		}
		s.View(context.Background(), view, func(tx *Tx) error {
			recs, err := tx.OlmSessions(sender)
			if err != nil {
				return err
			}
			if len(recs) != MaxOlmSessionsPerSender || recs[0].Session.ID() != newest {
				t.Errorf("%s: %d sessions after a restore at the limit, first %s", view, len(recs), recs[0].Session.ID())
			}
			for _, r := range recs {
				if r.Session.ID() == in.ID() {
					t.Errorf("%s: the least recently used session is still live", view)
				}
			}
			return nil
		})
	}
}

// Invariant 8: a Megolm index reused by another event is a replay; the same
// event again is fine.
func TestInvariant8ReplayDetected(t *testing.T) {
	s, _ := tempStore(t)
	update(t, s, func(tx *Tx) error {
		if err := tx.RecordMegolmIndex("sess", 7, "$a", 1); err != nil {
			return err
		}
		if err := tx.RecordMegolmIndex("sess", 7, "$a", 1); err != nil {
			t.Errorf("same event again: %v", err)
		}
		err := tx.RecordMegolmIndex("sess", 7, "$b", 2)
		var re *ReplayError
		if !errors.As(err, &re) || re.FirstEvent != "$a" || !errors.Is(err, ErrReplay) {
			t.Errorf("replay: %v", err)
		}
		return nil
	})
}

// Invariant 10: a worse copy of an inbound group session never replaces a
// better one; a better copy does, and the old one is archived.
func TestInvariant10KeepTheBetterCopy(t *testing.T) {
	s, path := tempStore(t)
	out, _ := megolm.NewOutboundGroupSession(rand.Reader)
	early, _ := megolm.NewInboundGroupSession(out.SessionKey())
	out.Encrypt([]byte("x"))
	out.Encrypt([]byte("y"))
	exported, _ := early.Export(2)
	late, _ := megolm.ImportInboundGroupSession(exported)
	rec := func(sess *megolm.InboundGroupSession, fwd bool) *InboundGroupSessionRecord {
		return &InboundGroupSessionRecord{RoomID: "!r", SenderKey: "sk", SigningKey: "ed", Session: sess, Forwarded: fwd}
	}
	update(t, s, func(tx *Tx) error { _, err := tx.PutInboundGroupSession(rec(late, true)); return err })
	before := dump(t, path)
	update(t, s, func(tx *Tx) error {
		changed, err := tx.PutInboundGroupSession(rec(late.Clone(), true))
		if changed {
			t.Error("equal copy changed the store")
		}
		return err
	})
	if !bytes.Equal(before, dump(t, path)) {
		t.Fatal("store changed by an equal copy")
	}
	update(t, s, func(tx *Tx) error {
		changed, err := tx.PutInboundGroupSession(rec(early, false))
		if !changed {
			t.Error("better copy refused")
		}
		return err
	})
	update(t, s, func(tx *Tx) error {
		changed, err := tx.PutInboundGroupSession(rec(late, true))
		if changed {
			t.Error("worse copy replaced the better one")
		}
		got, _ := tx.InboundGroupSession("!r", early.ID())
		if got.Session.FirstKnownIndex() != 0 || got.Forwarded {
			t.Errorf("kept index %d forwarded %v", got.Session.FirstKnownIndex(), got.Forwarded)
		}
		return err
	})
	var archived int
	s.db.Read(context.Background(), "n", func(tx *sqlitedb.Tx) error {
		return tx.QueryRow("SELECT count(*) FROM archived_inbound_group_sessions").Scan(&archived)
	})
	if archived != 1 {
		t.Fatalf("%d archived copies", archived)
	}
}

// A transaction that read a sender's sessions knows their number and skips
// the prune query while it stays under the limit, but never lets the sender
// pass it: counted from SQLite or from the cache, with archives and restores
// in between.
func TestOlmSessionLimitHoldsAfterAReadInTheSameTransaction(t *testing.T) {
	s, _ := tempStore(t)
	_, _, sender := sessionPair(t)
	base := time.Unix(1_700_000_000, 0)
	used := 0
	put := func(tx *Tx) (string, error) {
		in, _, _ := sessionPair(t)
		used++
		return in.ID(), tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: in,
			CreatedAt: base, LastUsedAt: base.Add(time.Duration(used) * time.Second)})
	}
	read := func(tx *Tx, want int) {
		t.Helper()
		recs, err := tx.OlmSessions(sender)
		if err != nil || len(recs) != want {
			t.Fatalf("%d sessions (%v), want %d", len(recs), err, want)
		}
	}
	inSQLite := func() int {
		s.Invalidate()
		var n int
		s.View(context.Background(), "count", func(tx *Tx) error {
			recs, err := tx.OlmSessions(sender)
			n = len(recs)
			return err
		})
		return n
	}
	// Counted from SQLite: 0, then one past the limit.
	update(t, s, func(tx *Tx) error {
		read(tx, 0)
		for range MaxOlmSessionsPerSender + 1 {
			if _, err := put(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if n := inSQLite(); n != MaxOlmSessionsPerSender {
		t.Fatalf("counted from SQLite: %d sessions, want %d", n, MaxOlmSessionsPerSender)
	}
	// Counted from the cache, after an archive and a restore.
	s.View(context.Background(), "warm", func(tx *Tx) error { read(tx, MaxOlmSessionsPerSender); return nil })
	var archived string
	update(t, s, func(tx *Tx) error {
		read(tx, MaxOlmSessionsPerSender)
		id, err := put(tx)
		if err != nil {
			return err
		}
		archived = id
		return tx.ArchiveOlmSession(sender, id)
	})
	s.View(context.Background(), "warm", func(tx *Tx) error { read(tx, MaxOlmSessionsPerSender-1); return nil })
	update(t, s, func(tx *Tx) error {
		read(tx, MaxOlmSessionsPerSender-1)
		if ok, err := tx.RestoreOlmSession(archived); err != nil || !ok {
			return fmt.Errorf("restore: %v %v", ok, err)
		}
		_, err := put(tx)
		return err
	})
	if n := inSQLite(); n != MaxOlmSessionsPerSender {
		t.Fatalf("after a restore: %d sessions, want %d", n, MaxOlmSessionsPerSender)
	}
}

// Removing a used one-time key keeps the cached account, without the key:
// a sync with a pre-key message is usually followed by more, and reloading
// the account unseals every one-time key. The copy kept is the one a reload
// would give.
func TestRemoveOneTimeKeyKeepsTheCachedAccount(t *testing.T) {
	s, _ := tempStore(t)
	acct, _ := olm.NewAccount(rand.Reader)
	acct.GenerateOneTimeKeys(rand.Reader, 5)
	acct.GenerateFallbackKey(rand.Reader)
	update(t, s, func(tx *Tx) error {
		return tx.PutAccount(&AccountRecord{UserID: "@a:x", DeviceID: "D", Account: acct})
	})
	used := acct.OneTimeKeys()[1].Key
	update(t, s, func(tx *Tx) error {
		ok, err := tx.RemoveOneTimeKey(used.String())
		if !ok {
			t.Error("key not removed")
		}
		return err
	})
	cached, ok := s.cache.account.get(struct{}{}, s.cache.generation)
	if !ok {
		t.Fatal("the account left the cache when one of its one-time keys was removed")
	}
	for _, k := range cached.Account.AllOneTimeKeys() {
		if k.Key == used {
			t.Fatal("the cached account still holds the removed key")
		}
	}
	s.Invalidate()
	var reloaded *AccountRecord
	s.View(context.Background(), "reload", func(tx *Tx) (err error) { reloaded, err = tx.Account(); return err })
	if !reflect.DeepEqual(cached.Account.AllOneTimeKeys(), reloaded.Account.AllOneTimeKeys()) {
		t.Fatalf("cached one-time keys %v, stored %v", cached.Account.AllOneTimeKeys(), reloaded.Account.AllOneTimeKeys())
	}
	// A fallback key has no row: nothing is removed and the cache stays.
	fb, _ := acct.FallbackKey()
	update(t, s, func(tx *Tx) error {
		if ok, err := tx.RemoveOneTimeKey(fb.Key.String()); ok || err != nil {
			t.Errorf("fallback key: removed %v, %v", ok, err)
		}
		return nil
	})
}
