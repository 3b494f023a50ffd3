package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
)

func TestInspectPrintsLeaseAndCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crypto.db")
	s, err := cryptostore.Open(context.Background(), path, cryptostore.Options{Key: &[32]byte{1}, Role: "app"})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(context.Background(), "t", cryptostore.Normal, func(tx *cryptostore.Tx) error { return tx.TrackUser("@u:x", true) })
	s.Close()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), &out, &errOut, []string{"inspect", path}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"schema         version", "released by app:", "tracked_users                    1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsageAndErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), &out, &errOut, nil); code != 2 || !strings.Contains(errOut.String(), "inspect") {
		t.Fatalf("no args: %d %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), &out, &errOut, []string{"inspect"}); code != 2 {
		t.Fatalf("missing arg: %d", code)
	}
	errOut.Reset()
	if code := run(context.Background(), &out, &errOut, []string{"inspect", filepath.Join(t.TempDir(), "none.db")}); code != 1 {
		t.Fatalf("missing file: %d %s", code, errOut.String())
	}
}
