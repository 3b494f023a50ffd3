package machine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine/keyexport"
	"github.com/xolm/xolm/megolm"
)

// exportRounds keeps the tests' key derivation cheap; the format is the same
// at any count.
const exportRounds = 10

func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	var events []roomEventCase
	for i := range 3 {
		content := encryptText(t, alice, testRoom, "msg")
		events = append(events, roomEventCase{id: "$" + strconv.Itoa(i), content: content})
		if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent(events[i].id, "@alice:example.org", content)); err != nil {
			t.Fatal(err)
		}
	}
	file, err := bob.m.ExportRoomKeys(ctx, "correct horse", exportRounds, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(file, []byte("-----BEGIN MEGOLM SESSION DATA-----\n")) {
		t.Fatalf("file starts %.40q", file)
	}
	// The file holds the session at its first known index, with its origin.
	plain, err := keyexport.Decrypt(file, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := keyexport.UnmarshalSessions(plain)
	if err != nil || len(sessions) != 1 {
		t.Fatalf("%d sessions: %v", len(sessions), err)
	}
	s := sessions[0]
	if s.RoomID != testRoom || s.SenderKey != alice.m.ids.Curve25519 || s.SenderClaimedKeys.Ed25519 != alice.m.ids.Ed25519 ||
		len(s.ForwardingCurve25519KeyChain) != 0 || s.SessionKey[0] != 1 {
		t.Fatalf("exported %+v", s)
	}

	// Another device imports it and decrypts every message, as forwarded.
	carol := newRoomPeer(t, "@bob:example.org", "BOB2")
	imported, total, err := carol.m.ImportRoomKeys(ctx, file, "correct horse")
	if err != nil || imported != 1 || total != 1 {
		t.Fatalf("import: %d of %d: %v", imported, total, err)
	}
	for i, e := range events {
		d, err := carol.m.DecryptRoomEvent(ctx, testRoom, roomEvent(e.id, "@alice:example.org", e.content))
		if err != nil || d.MessageIndex != uint32(i) || !d.Forwarded || d.SenderKey != alice.m.ids.Curve25519.String() ||
			d.ClaimedEd25519 != alice.m.ids.Ed25519.String() {
			t.Fatalf("imported key, message %d: %+v, %v", i, d, err)
		}
	}
	// Importing again changes nothing; a wrong passphrase is refused.
	before := storeDump(t, carol.path)
	if imported, total, err := carol.m.ImportRoomKeys(ctx, file, "correct horse"); err != nil || imported != 0 || total != 1 {
		t.Fatalf("second import: %d of %d: %v", imported, total, err)
	}
	if _, _, err := carol.m.ImportRoomKeys(ctx, file, "wrong"); !errors.Is(err, keyexport.ErrBadMAC) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if before != storeDump(t, carol.path) {
		t.Fatal("a second import or a refused file changed the store")
	}
}

type roomEventCase struct {
	id      string
	content []byte
}

func TestExportFilter(t *testing.T) {
	ctx := context.Background()
	alice := newRoomPeer(t, "@alice:example.org", "ALICE")
	for _, room := range []string{"!a:x", "!b:x", "!c:x"} {
		share(t, alice, room, nil, EncryptionSettings{})
	}
	var asked []string
	file, err := alice.m.ExportRoomKeys(ctx, "pw", exportRounds, func(room, session string) bool {
		asked = append(asked, room)
		return room != "!b:x"
	})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := keyexport.Decrypt(file, "pw")
	sessions, _ := keyexport.UnmarshalSessions(plain)
	if strings.Join(asked, " ") != "!a:x !b:x !c:x" || len(sessions) != 2 || sessions[0].RoomID != "!a:x" || sessions[1].RoomID != "!c:x" {
		t.Fatalf("asked %v, exported %d", asked, len(sessions))
	}
	if _, err := alice.m.ExportRoomKeys(ctx, "pw", keyexport.MaxRounds+1, nil); !errors.Is(err, keyexport.ErrInvalidRounds) {
		t.Fatalf("rounds over the limit: %v", err)
	}
}

// Invariant 10 through import: a better copy (known from an earlier index)
// replaces the stored one, a worse copy does not.
func TestImportKeepsTheBetterCopy(t *testing.T) {
	ctx := context.Background()
	alice, bob := sharedRoom(t)
	early := encryptText(t, alice, testRoom, "early")
	full, err := alice.m.ExportRoomKeys(ctx, "pw", exportRounds, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$early", "@alice:example.org", early)); err != nil {
		t.Fatal(err)
	}
	// A copy known from index 1, exported from a device that got it late.
	late := newRoomPeer(t, "@dave:example.org", "DAVE")
	sessionID := outboundSession(t, alice, testRoom).Session.ID()
	var rec *cryptostore.InboundGroupSessionRecord
	bob.update(t, func(tx *cryptostore.Tx) error {
		rec, err = tx.InboundGroupSession(testRoom, sessionID)
		return err
	})
	exp, err := rec.Session.Export(1)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Session, err = megolm.ImportInboundGroupSession(exp); err != nil {
		t.Fatal(err)
	}
	late.update(t, func(tx *cryptostore.Tx) error {
		_, err := tx.PutInboundGroupSession(rec)
		return err
	})
	worse, err := late.m.ExportRoomKeys(ctx, "pw", exportRounds, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := storeDump(t, bob.path)
	if imported, total, err := bob.m.ImportRoomKeys(ctx, worse, "pw"); err != nil || imported != 0 || total != 1 {
		t.Fatalf("worse copy: %d of %d: %v", imported, total, err)
	}
	if before != storeDump(t, bob.path) {
		t.Fatal("a worse copy changed the store")
	}
	if imported, _, err := late.m.ImportRoomKeys(ctx, full, "pw"); err != nil || imported != 1 {
		t.Fatalf("better copy: %d: %v", imported, err)
	}
	if _, err := late.m.DecryptRoomEvent(ctx, testRoom, roomEvent("$early", "@alice:example.org", early)); err != nil {
		t.Fatalf("index 0 after importing the better copy: %v", err)
	}
	late.update(t, func(tx *cryptostore.Tx) error {
		rec, err := tx.InboundGroupSession(testRoom, sessionID)
		if err != nil || rec.Session.FirstKnownIndex() != 0 {
			t.Fatalf("stored copy %v: %v", rec, err)
		}
		return err
	})
}

// Published key-export files: matrix-rust-sdk's holds a session, which is
// imported; Element's hold plain strings, which are not session lists and
// are refused with the store unchanged.
func TestImportPublishedVectors(t *testing.T) {
	ctx := context.Background()
	for _, v := range publishedExports(t) {
		t.Run(v.source, func(t *testing.T) {
			p := newRoomPeer(t, "@alice:example.org", "ALICE")
			before := storeDump(t, p.path)
			imported, total, err := p.m.ImportRoomKeys(ctx, v.file, v.passphrase)
			if !v.sessions {
				if !errors.Is(err, keyexport.ErrInvalidFile) || imported != 0 || total != 0 {
					t.Fatalf("%d of %d: %v", imported, total, err)
				}
				if before != storeDump(t, p.path) {
					t.Fatal("a refused file changed the store")
				}
				return
			}
			if err != nil || imported != 1 || total != 1 {
				t.Fatalf("%d of %d: %v", imported, total, err)
			}
			p.update(t, func(tx *cryptostore.Tx) error {
				rec, err := tx.InboundGroupSession("!test:localhost", "8sdNGgmLft8osylLK9ij3IotBLyQQufe/KngiW4Dpq0")
				if err != nil || !rec.Forwarded || rec.SenderKey != "cKQkLU8izjY3tpLVPiR4PDeeCEKtaDiAGiQH+UbZm2w" ||
					rec.SigningKey != "wJ7DzYIlwFghczuxFG7F4ugAK3IFjpSaC74MzLFC6ig" {
					t.Fatalf("stored %+v: %v", rec, err)
				}
				return err
			})
			// Exported again, it is the same session.
			file, err := p.m.ExportRoomKeys(ctx, "again", exportRounds, nil)
			if err != nil {
				t.Fatal(err)
			}
			q := newRoomPeer(t, "@alice:example.org", "ALICE")
			if imported, total, err := q.m.ImportRoomKeys(ctx, file, "again"); err != nil || imported != 1 || total != 1 {
				t.Fatalf("re-export: %d of %d: %v", imported, total, err)
			}
		})
	}
}

type publishedExport struct {
	source, passphrase string
	sessions           bool // a session list, not one of Element's plain strings
	file               []byte
}

// publishedExports reads keyexport's testdata/vectors.txt (its format is
// described at the top of that file).
func publishedExports(t testing.TB) []publishedExport {
	t.Helper()
	f, err := os.Open("keyexport/testdata/vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []publishedExport
	cur := publishedExport{sessions: true}
	inFile := false
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case inFile:
			cur.file = append(append(cur.file, line...), '\n')
			if line == "-----END MEGOLM SESSION DATA-----" {
				out = append(out, cur)
				cur, inFile = publishedExport{sessions: true}, false
			}
		case line == "-----BEGIN MEGOLM SESSION DATA-----":
			cur.file, inFile = append([]byte(line), '\n'), true
		case strings.HasPrefix(line, "source: "):
			cur.source = strings.TrimPrefix(line, "source: ")
		case strings.HasPrefix(line, "passphrase: "):
			if cur.passphrase, err = strconv.Unquote(strings.TrimPrefix(line, "passphrase: ")); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(line, "plaintext: "):
			cur.sessions = false
		}
	}
	if err := sc.Err(); err != nil || len(out) != 5 {
		t.Fatalf("%d vectors: %v", len(out), err)
	}
	return out
}
