package cryptostore

import (
	"fmt"
	"strconv"

	"github.com/xolm/xolm/olm"
)

const (
	tableAccount     = "account"
	tableOneTimeKeys = "one_time_keys"
)

// AccountRecord is this device's Olm account with its Matrix identity.
type AccountRecord struct {
	UserID, DeviceID string
	Account          *olm.Account
	// Shared is true once the device keys were uploaded.
	Shared bool
}

func (r *AccountRecord) clone() *AccountRecord {
	c := *r
	c.Account = r.Account.Clone()
	return &c
}

func otkRowKey(id olm.KeyID) string { return strconv.FormatUint(uint64(id), 10) }

// Account returns a copy of the account, or ErrNotFound before PutAccount.
// Its one-time keys come from their own rows.
func (t *Tx) Account() (*AccountRecord, error) {
	if rec, ok := t.s.cache.account.get(struct{}{}, t.gen); ok && !t.changed(cacheEntry{table: tableAccount}) {
		return rec.clone(), nil
	}
	rec, err := t.loadAccount()
	if err != nil {
		return nil, err
	}
	t.cacheRead(func() { t.s.cache.account.put(struct{}{}, rec, t.gen) })
	return rec.clone(), nil
}

func (t *Tx) loadAccount() (*AccountRecord, error) {
	rec := new(AccountRecord)
	var blob []byte
	err := t.tx.QueryRow(`SELECT user_id, device_id, shared, blob FROM account WHERE id = 1`).
		Scan(&rec.UserID, &rec.DeviceID, &rec.Shared, &blob)
	if err != nil {
		return nil, noRows(err)
	}
	acct, err := olm.UnpickleAccount(blob, &t.s.key, rowAD(tableAccount, "1"))
	if err != nil {
		return nil, corrupt(tableAccount, "1", err)
	}
	rows, err := t.tx.Query(`SELECT key_id, published, blob FROM one_time_keys ORDER BY key_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var published bool
		var kb []byte
		if err := rows.Scan(&id, &published, &kb); err != nil {
			return nil, err
		}
		k := otkRowKey(olm.KeyID(id))
		if err := acct.AddPickledOneTimeKey(kb, published, &t.s.key, rowAD(tableOneTimeKeys, k)); err != nil {
			return nil, corrupt(tableOneTimeKeys, k, err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rec.Account = acct
	return rec, nil
}

// PutAccount stores the account: its core row (identity keys, fallback keys
// and the key ID counter, so the counter commits with the keys it numbers:
// DESIGN.md invariant 11) and one row per one-time key, inserting new keys,
// updating published flags and deleting keys the account no longer holds.
func (t *Tx) PutAccount(rec *AccountRecord) error {
	if err := t.checkWrite(); err != nil {
		return err
	}
	ik := rec.Account.IdentityKeys()
	blob := rec.Account.PickleWithoutOneTimeKeys(&t.s.key, rowAD(tableAccount, "1"))
	res, err := t.tx.Exec(`INSERT INTO account (id, user_id, device_id, curve25519, ed25519, shared, blob)
		VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET shared = excluded.shared, blob = excluded.blob
		WHERE user_id = excluded.user_id AND device_id = excluded.device_id
			AND curve25519 = excluded.curve25519 AND ed25519 = excluded.ed25519`,
		rec.UserID, rec.DeviceID, ik.Curve25519.String(), ik.Ed25519.String(), rec.Shared, blob)
	if err != nil {
		return fmt.Errorf("cryptostore: put account: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		// The row exists and names another user, device or identity: writing
		// one-time keys or a key counter for it would corrupt it.
		return fmt.Errorf("%w: %s %s %s", ErrAccountMismatch, rec.UserID, rec.DeviceID, ik.Curve25519)
	}
	if err := t.syncOneTimeKeys(rec.Account); err != nil {
		return err
	}
	c := rec.clone()
	t.wrote(cacheEntry{table: tableAccount})
	t.afterCommit(func() { t.s.cache.account.put(struct{}{}, c, t.gen) })
	return nil
}

func (t *Tx) syncOneTimeKeys(a *olm.Account) error {
	stored := map[olm.KeyID]bool{} // id -> published
	rows, err := t.tx.Query(`SELECT key_id, published FROM one_time_keys`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int64
		var published bool
		if err := rows.Scan(&id, &published); err != nil {
			rows.Close()
			return err
		}
		stored[olm.KeyID(id)] = published
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, k := range a.AllOneTimeKeys() {
		published, ok := stored[k.ID]
		delete(stored, k.ID)
		switch {
		case !ok:
			key := otkRowKey(k.ID)
			kb, err := a.PickleOneTimeKey(k.ID, &t.s.key, rowAD(tableOneTimeKeys, key))
			if err != nil {
				return err
			}
			if _, err := t.tx.Exec(`INSERT INTO one_time_keys (key_id, public_key, published, blob)
				VALUES (?, ?, ?, ?)`, int64(k.ID), k.Key.String(), k.Published, kb); err != nil {
				return fmt.Errorf("cryptostore: put one-time key %d: %w", k.ID, err)
			}
		case published != k.Published:
			if _, err := t.tx.Exec(`UPDATE one_time_keys SET published = ? WHERE key_id = ?`,
				k.Published, int64(k.ID)); err != nil {
				return err
			}
		}
	}
	for id := range stored { // keys the account dropped: erased (secure_delete), not archived
		if _, err := t.tx.Exec(`DELETE FROM one_time_keys WHERE key_id = ?`, int64(id)); err != nil {
			return err
		}
	}
	return nil
}

// RemoveOneTimeKey deletes the one-time key with the given public key: the
// hot path after a pre-key message decrypted (DESIGN.md invariant 6), one
// row instead of the whole account. It reports whether a key was removed
// (false for a fallback key, which stays).
func (t *Tx) RemoveOneTimeKey(publicKey string) (bool, error) {
	if err := t.checkWrite(); err != nil {
		return false, err
	}
	res, err := t.tx.Exec(`DELETE FROM one_time_keys WHERE public_key = ?`, publicKey)
	if err != nil {
		return false, fmt.Errorf("cryptostore: remove one-time key: %w", err)
	}
	n, _ := res.RowsAffected()
	if n == 0 {
		return false, nil
	}
	// The cached account still holds the key: after the commit a copy
	// without it takes its place, so that the next read does not reload and
	// unseal every one-time key (a sync with a pre-key message is followed by
	// others). Without a cached copy that held the key, none is kept.
	t.wrote(cacheEntry{table: tableAccount})
	t.afterCommit(func() {
		if rec, ok := t.s.cache.account.get(struct{}{}, t.gen); ok {
			if pub, err := olm.ParseCurve25519PublicKey(publicKey); err == nil {
				c := rec.clone()
				if c.Account.RemoveOneTimeKey(pub) {
					t.s.cache.account.put(struct{}{}, c, t.gen)
					return
				}
			}
		}
		t.s.cache.account.remove(struct{}{})
	})
	return true, nil
}
