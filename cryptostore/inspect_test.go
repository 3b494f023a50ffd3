package cryptostore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestInspectCountsWithoutChangingTheFile(t *testing.T) {
	s, path := tempStore(t)
	mine, _, sender := sessionPair(t)
	update(t, s, func(tx *Tx) error {
		tx.TrackUser("@u:x", true)
		return tx.PutOlmSession(&OlmSessionRecord{SenderKey: sender, Session: mine, CreatedAt: time.Now(), LastUsedAt: time.Now()})
	})
	s.Close()
	before, _ := os.ReadFile(path)
	r, err := Inspect(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if r.SchemaVersion != SchemaVersion || r.Rows["olm_sessions"] != 1 || r.Rows["tracked_users"] != 1 || r.Rows["devices"] != 0 {
		t.Fatalf("report %+v", r)
	}
	if r.Lease.Generation < 1 || r.Lease.Holder == "" {
		t.Fatalf("lease %+v", r.Lease)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("inspect changed the file")
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a database at all, not at all"), 0o600)
	if _, err := Inspect(context.Background(), junk); !errors.Is(err, ErrNotStore) {
		t.Fatalf("junk: %v", err)
	}
}
