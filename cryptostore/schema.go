package cryptostore

import (
	"context"
	"fmt"
	"github.com/xolm/xolm/internal/sqlitedb"
)

// applicationID marks a SQLite file as an xolm store ("xolm" in ASCII), so
// that opening some other database is refused rather than migrated.
const applicationID = 0x786f6c6d

// migration moves the schema from version-1 to version. Migrations only ever
// append: a released migration is never edited.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations are applied in order inside one write transaction each.
var migrations = []migration{
	{1, "initial schema", []string{
		// The lease table is owned by xprocess; its migration runs first (see migrate).

		// Identity keys, the one-time/fallback key-ID counter and the fallback
		// keys: one sealed row, rewritten only when keys are generated.
		`CREATE TABLE account (
			id INTEGER PRIMARY KEY CHECK (id = 1),
			user_id TEXT NOT NULL,
			device_id TEXT NOT NULL,
			curve25519 TEXT NOT NULL,
			ed25519 TEXT NOT NULL,
			shared INTEGER NOT NULL DEFAULT 0,
			blob BLOB NOT NULL
		)`,
		// One-time keys as rows: removing a used key deletes one row.
		`CREATE TABLE one_time_keys (
			key_id INTEGER PRIMARY KEY,
			public_key TEXT NOT NULL UNIQUE,
			published INTEGER NOT NULL DEFAULT 0,
			blob BLOB NOT NULL
		)`,
		// Olm sessions by the peer's Curve25519 identity key.
		`CREATE TABLE olm_sessions (
			session_id TEXT PRIMARY KEY,
			sender_key TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			last_used_at INTEGER NOT NULL,
			blob BLOB NOT NULL
		)`,
		`CREATE INDEX olm_sessions_by_sender ON olm_sessions (sender_key, last_used_at)`,
		// Hashes of decrypted Olm messages: a second copy is a duplicate, not a wedge.
		`CREATE TABLE olm_message_hashes (
			hash BLOB PRIMARY KEY,
			sender_key TEXT NOT NULL,
			received_at INTEGER NOT NULL
		) WITHOUT ROWID`,
		// When a sender device was last sent a fresh session to unwedge it.
		`CREATE TABLE olm_unwedged (
			sender_key TEXT PRIMARY KEY,
			at INTEGER NOT NULL
		) WITHOUT ROWID`,
		`CREATE TABLE inbound_group_sessions (
			room_id TEXT NOT NULL,
			session_id TEXT NOT NULL,
			sender_key TEXT NOT NULL,
			signing_key TEXT NOT NULL,
			first_known_index INTEGER NOT NULL,
			forwarded INTEGER NOT NULL,
			shared_history INTEGER NOT NULL DEFAULT 0,
			imported_at INTEGER NOT NULL,
			blob BLOB NOT NULL,
			PRIMARY KEY (room_id, session_id)
		) WITHOUT ROWID`,
		// Megolm replay records: (session, index) -> (event, time). One row per
		// decrypted index keeps the check O(log n) in the index.
		`CREATE TABLE megolm_replay (
			session_id TEXT NOT NULL,
			message_index INTEGER NOT NULL,
			event_id TEXT NOT NULL,
			origin_ts INTEGER NOT NULL,
			PRIMARY KEY (session_id, message_index)
		) WITHOUT ROWID`,
		`CREATE TABLE outbound_group_sessions (
			room_id TEXT PRIMARY KEY,
			session_id TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			message_count INTEGER NOT NULL,
			blob BLOB NOT NULL
		)`,
		// Whom an outbound session was shared with, and from which index.
		`CREATE TABLE outbound_group_shares (
			session_id TEXT NOT NULL,
			user_id TEXT NOT NULL,
			device_id TEXT NOT NULL,
			message_index INTEGER NOT NULL,
			PRIMARY KEY (session_id, user_id, device_id)
		) WITHOUT ROWID`,
		`CREATE TABLE devices (
			user_id TEXT NOT NULL,
			device_id TEXT NOT NULL,
			curve25519 TEXT NOT NULL,
			ed25519 TEXT NOT NULL,
			keys_json BLOB NOT NULL,
			updated_at INTEGER NOT NULL,
			PRIMARY KEY (user_id, device_id)
		) WITHOUT ROWID`,
		`CREATE INDEX devices_by_curve25519 ON devices (curve25519)`,
		`CREATE TABLE tracked_users (
			user_id TEXT PRIMARY KEY,
			dirty INTEGER NOT NULL
		) WITHOUT ROWID`,
		// Requests waiting to be sent; the id is stable across retries and restarts.
		`CREATE TABLE outgoing_requests (
			id TEXT PRIMARY KEY,
			type TEXT NOT NULL,
			body BLOB NOT NULL,
			created_at INTEGER NOT NULL
		)`,
		// Archives: durable state moved aside with a timestamp, never deleted.
		// Every archiving adds a row (rowid order is archive order), so two
		// copies archived in the same millisecond both survive.
		// Spent secrets (used one-time keys, message keys) are erased, not archived.
		`CREATE TABLE archived_olm_sessions (
			session_id TEXT NOT NULL,
			sender_key TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			last_used_at INTEGER NOT NULL,
			blob BLOB NOT NULL,
			archived_at INTEGER NOT NULL
		)`,
		`CREATE INDEX archived_olm_sessions_by_id ON archived_olm_sessions (session_id)`,
		`CREATE TABLE archived_inbound_group_sessions (
			room_id TEXT NOT NULL,
			session_id TEXT NOT NULL,
			sender_key TEXT NOT NULL,
			signing_key TEXT NOT NULL,
			first_known_index INTEGER NOT NULL,
			forwarded INTEGER NOT NULL,
			shared_history INTEGER NOT NULL DEFAULT 0,
			imported_at INTEGER NOT NULL,
			blob BLOB NOT NULL,
			archived_at INTEGER NOT NULL
		)`,
		`CREATE INDEX archived_inbound_group_sessions_by_id ON archived_inbound_group_sessions (room_id, session_id)`,
		`CREATE TABLE archived_devices (
			user_id TEXT NOT NULL,
			device_id TEXT NOT NULL,
			curve25519 TEXT NOT NULL,
			ed25519 TEXT NOT NULL,
			keys_json BLOB NOT NULL,
			updated_at INTEGER NOT NULL,
			archived_at INTEGER NOT NULL
		)`,
		`CREATE INDEX archived_devices_by_id ON archived_devices (user_id, device_id)`,
	}},
	{2, "server key counts", []string{
		// What the homeserver last reported about this device's published
		// keys: one row, rewritten when a sync or an upload reports new counts.
		`CREATE TABLE server_key_counts (
			id INTEGER PRIMARY KEY CHECK (id = 1),
			one_time_keys INTEGER NOT NULL,
			fallback_key_used INTEGER NOT NULL
		)`,
	}},
	{3, "device lookup by identity key without a sort", []string{
		// DeviceByCurve25519 takes the most recently updated device with a
		// key: with updated_at in the index it is one index seek, not a sort.
		`DROP INDEX devices_by_curve25519`,
		`CREATE INDEX devices_by_curve25519 ON devices (curve25519, updated_at)`,
	}},
	{4, "maintenance schedule", []string{
		// When each maintenance task last ran to completion, so that the
		// processes sharing the store run it once per interval between them.
		`CREATE TABLE maintenance (
			task TEXT PRIMARY KEY,
			last_run_at INTEGER NOT NULL
		) WITHOUT ROWID`,
	}},
}

// SchemaVersion is the schema version this build writes.
var SchemaVersion = migrations[len(migrations)-1].version

// schemaState reads application_id and user_version.
func schemaState(ctx context.Context, tx *sqlitedb.Tx) (appID, version int, err error) {
	if err := tx.QueryRow("PRAGMA application_id").Scan(&appID); err != nil {
		return 0, 0, err
	}
	if err := tx.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		return 0, 0, err
	}
	return appID, version, nil
}

// migrateTx applies, inside tx, every migration above the file's version up
// to target, and returns the versions it applied.
func migrateTx(ctx context.Context, tx *sqlitedb.Tx, target int, leaseMigrate func(*sqlitedb.Tx) error) ([]int, error) {
	appID, version, err := schemaState(ctx, tx)
	if err != nil {
		return nil, err
	}
	if appID != 0 && appID != applicationID {
		return nil, fmt.Errorf("%w: application_id %#x is not an xolm store", ErrNotStore, appID)
	}
	if appID == 0 && version != 0 {
		return nil, fmt.Errorf("%w: user_version %d without an xolm application_id", ErrNotStore, version)
	}
	if appID == 0 {
		var n int
		if err := tx.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
			return nil, err
		}
		if n != 0 {
			return nil, fmt.Errorf("%w: database has %d objects but no xolm application_id", ErrNotStore, n)
		}
	}
	if version > target {
		return nil, &SchemaTooNewError{Found: version, Supported: target}
	}
	if version == target {
		return nil, nil
	}
	if appID == 0 {
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
			return nil, err
		}
		if err := leaseMigrate(tx); err != nil {
			return nil, err
		}
	}
	var applied []int
	for _, m := range migrations {
		if m.version <= version || m.version > target {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := tx.Exec(stmt); err != nil {
				return nil, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		applied = append(applied, m.version)
	}
	if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", target)); err != nil {
		return nil, err
	}
	return applied, nil
}
