package cryptostore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/xprocess"
)

// schemaSQL returns the file's schema as SQLite records it, sorted.
func schemaSQL(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT type, name, coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, text string
		rows.Scan(&typ, &name, &text)
		b.WriteString(typ + " " + name + ": " + text + "\n")
	}
	return b.String()
}

// writeAtVersion creates a store file whose schema stops at version v, as
// the release that shipped version v wrote it.
func writeAtVersion(t *testing.T, path string, v int) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, path, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v == 0 {
		return
	}
	err = db.Write(ctx, "old schema", sqlitedb.Normal, func(tx *sqlitedb.Tx) error {
		_, err := migrateTx(ctx, tx, v, xprocess.Migrate)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every migration is tested by upgrading a database written by the previous
// version: the result matches a store created fresh by this version.
func TestMigrationsUpgradeEachPreviousVersion(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	openAt(t, fresh, "app").Close()
	want := schemaSQL(t, fresh)
	for _, m := range migrations {
		t.Run(m.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "old.db")
			writeAtVersion(t, path, m.version-1)
			s := openAt(t, path, "app")
			update(t, s, func(tx *Tx) error { return tx.TrackUser("@u:x", true) })
			s.Close()
			if got := schemaSQL(t, path); got != want {
				t.Fatalf("upgraded schema differs from a fresh one:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestMigrationsAreOrderedAndAppendOnly(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 || len(m.stmts) == 0 || m.name == "" {
			t.Fatalf("migration %d: version %d, %d statements", i, m.version, len(m.stmts))
		}
	}
	if SchemaVersion != len(migrations) {
		t.Fatalf("SchemaVersion %d with %d migrations", SchemaVersion, len(migrations))
	}
}

// The device lookup by identity key is one index seek: no sort per lookup.
func TestDeviceByCurve25519UsesTheIndexWithoutASort(t *testing.T) {
	s, _ := tempStore(t)
	var plan strings.Builder
	s.db.Read(context.Background(), "plan", func(tx *sqlitedb.Tx) error {
		rows, err := tx.Query(`EXPLAIN QUERY PLAN SELECT user_id, device_id, ed25519, keys_json, updated_at FROM devices
			WHERE curve25519 = ? ORDER BY updated_at DESC LIMIT 1`, "k")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan.WriteString(detail + "\n")
		}
		return rows.Err()
	})
	if !strings.Contains(plan.String(), "devices_by_curve25519") || strings.Contains(plan.String(), "TEMP B-TREE") {
		t.Fatalf("query plan:\n%s", plan.String())
	}
}
