package cryptostore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"
)

// Report describes a store file without opening its secrets: what
// `xolm inspect` prints.
type Report struct {
	Path          string
	SchemaVersion int
	Lease         LeaseState
	// Rows counts the rows of every table, by table name.
	Rows map[string]int64
}

// LeaseState is the cross-process lease row as stored.
type LeaseState struct {
	Holder     string
	ExpiresAt  time.Time // zero when released
	Generation int64
	DataStamp  int64
}

// inspectTables are the tables Inspect counts, in the order it reports them.
var inspectTables = []string{
	"account", "one_time_keys", "server_key_counts", "olm_sessions", "olm_message_hashes", "olm_unwedged",
	"inbound_group_sessions", "megolm_replay", "outbound_group_sessions", "outbound_group_shares",
	"devices", "tracked_users", "outgoing_requests", "maintenance",
	"archived_olm_sessions", "archived_inbound_group_sessions", "archived_devices",
}

// InspectTables lists the tables a Report counts, in report order.
func InspectTables() []string { return append([]string(nil), inspectTables...) }

// Inspect reads a store file read-only, without the store key and without
// taking the lease: schema version, lease row and row counts. It changes
// nothing in the file.
func Inspect(ctx context.Context, path string) (*Report, error) {
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrOpen, path, err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, classifyOpenError(path, err)
	}
	defer tx.Rollback()
	r := &Report{Path: path, Rows: map[string]int64{}}
	var appID int
	if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return nil, classifyOpenError(path, err)
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&r.SchemaVersion); err != nil {
		return nil, classifyOpenError(path, err)
	}
	if appID != applicationID {
		return nil, fmt.Errorf("%w: %s", ErrNotStore, path)
	}
	if r.SchemaVersion > SchemaVersion {
		return nil, &SchemaTooNewError{Found: r.SchemaVersion, Supported: SchemaVersion}
	}
	var expires int64
	err = tx.QueryRowContext(ctx, `SELECT holder, expires_at, generation, data_stamp FROM xprocess_lease LIMIT 1`).
		Scan(&r.Lease.Holder, &expires, &r.Lease.Generation, &r.Lease.DataStamp)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return nil, fmt.Errorf("cryptostore: inspect lease: %w", err)
	case expires > 0:
		r.Lease.ExpiresAt = time.UnixMilli(expires)
	}
	for _, table := range inspectTables {
		var n int64
		// Table names come from the constant list above, never from input.
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM "`+table+`"`).Scan(&n); err != nil {
			if r.SchemaVersion < SchemaVersion {
				continue // an older store may lack a table it gains on upgrade
			}
			return nil, fmt.Errorf("cryptostore: inspect %s: %w", table, err)
		}
		r.Rows[table] = n
	}
	return r, nil
}
