package olm

import (
	"fmt"
	"slices"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/libolmpickle"
	"github.com/xolm/xolm/internal/pickle"
)

// This file is low-level; most users won't need it. It lets a store keep
// one-time keys as rows of their own, so that using one deletes a row instead
// of rewriting the whole account.

// oneTimeKeyFormatVersion starts the encoding of a one-time key row.
const oneTimeKeyFormatVersion = 1

// PickleWithoutOneTimeKeys is [Account.Pickle] minus the one-time keys: the
// identity keys, the fallback keys and the key ID counter. Restore it with
// [UnpickleAccount], then add the keys back with [Account.AddPickledOneTimeKey].
func (a *Account) PickleWithoutOneTimeKeys(key *[32]byte, ad []byte) []byte {
	c := *a
	c.oneTimeKeys = nil
	return c.Pickle(key, ad)
}

// OneTimeKeyState is a one-time key with its published flag.
type OneTimeKeyState struct {
	OneTimeKey
	Published bool
}

// AllOneTimeKeys returns every one-time key held, published or not, newest
// first (fallback keys are not one-time keys).
func (a *Account) AllOneTimeKeys() []OneTimeKeyState {
	out := make([]OneTimeKeyState, len(a.oneTimeKeys))
	for i, k := range a.oneTimeKeys {
		out[i] = OneTimeKeyState{OneTimeKey: k.public(), Published: k.published}
	}
	return out
}

// PickleOneTimeKey seals the private half of the one-time key with ID id,
// binding ad. The published flag is not included: it is not secret, and a
// store keeps it beside the row.
func (a *Account) PickleOneTimeKey(id KeyID, key *[32]byte, ad []byte) ([]byte, error) {
	i := slices.IndexFunc(a.oneTimeKeys, func(k *localKey) bool { return k.id == id })
	if i < 0 {
		return nil, fmt.Errorf("olm: pickle one-time key %s: %w", id, ErrMissingOneTimeKey)
	}
	k := a.oneTimeKeys[i]
	var e libolmpickle.Encoder
	e.U32(oneTimeKeyFormatVersion)
	e.U32(uint32(k.id))
	priv, pub := k.key.PrivateArray(), k.key.PublicKey().Array()
	e.Bytes(priv[:])
	e.Bytes(pub[:])
	clear(priv[:])
	raw := e.Result()
	defer clear(raw)
	return pickle.Seal(key, pickle.KindOneTimeKey, ad, raw), nil
}

// AddPickledOneTimeKey restores a one-time key sealed by
// [Account.PickleOneTimeKey] into the account, in its place by ID. A key whose
// ID the account's counter has not reached yet, a duplicate ID, or a full
// key store is refused: restoring never reuses or invents an ID.
func (a *Account) AddPickledOneTimeKey(b []byte, published bool, key *[32]byte, ad []byte) error {
	raw, err := pickle.Open(key, pickle.KindOneTimeKey, ad, b)
	if err != nil {
		return fmt.Errorf("olm: unpickle one-time key: %w", openError(err))
	}
	defer clear(raw)
	d, v, err := versionedDecoder(raw)
	if err != nil {
		return fmt.Errorf("olm: unpickle one-time key: %w", err)
	}
	if v != oneTimeKeyFormatVersion {
		return &PickleVersionError{Object: "one-time key", Format: "xolm", Version: v}
	}
	id := KeyID(d.U32("key id"))
	priv, pub := d.Array32("private key"), d.Array32("public key")
	defer clear(priv[:])
	if err := d.Finish(); err != nil {
		return fmt.Errorf("olm: unpickle one-time key: %w: %w", ErrPickleFormat, err)
	}
	switch {
	case id == 0 || uint32(id) > a.lastKeyID:
		return fmt.Errorf("olm: add one-time key: %w: id %d is beyond the counter %d", ErrPickleFormat, id, a.lastKeyID)
	case len(a.oneTimeKeys) >= MaxOneTimeKeys:
		return fmt.Errorf("olm: add one-time key: %w: already %d keys", ErrPickleFormat, MaxOneTimeKeys)
	case slices.ContainsFunc(a.oneTimeKeys, func(k *localKey) bool { return k.id == id }):
		return fmt.Errorf("olm: add one-time key: %w: duplicate id %d", ErrPickleFormat, id)
	}
	k := &localKey{id: id, published: published, key: keys.NewCurve25519SecretKeyFromParts(&priv, &pub)}
	i, _ := slices.BinarySearchFunc(a.oneTimeKeys, id, func(k *localKey, id KeyID) int {
		switch {
		case k.id > id: // newest (highest ID) first
			return -1
		case k.id < id:
			return 1
		}
		return 0
	})
	a.oneTimeKeys = slices.Insert(a.oneTimeKeys, i, k)
	return nil
}

// Clone returns an independent copy of the account: changing one (generating
// or using keys, marking them published) leaves the other as it was. The
// one-time and fallback keys are copied, because using or dropping a key
// erases it.
func (a *Account) Clone() *Account {
	c := *a
	c.oneTimeKeys = make([]*localKey, len(a.oneTimeKeys))
	for i, k := range a.oneTimeKeys {
		c.oneTimeKeys[i] = k.clone()
	}
	c.fallback, c.prevFallback = a.fallback.clone(), a.prevFallback.clone()
	return &c
}

func (k *localKey) clone() *localKey {
	if k == nil {
		return nil
	}
	priv, pub := k.key.PrivateArray(), k.key.PublicKey().Array()
	c := &localKey{id: k.id, published: k.published, key: keys.NewCurve25519SecretKeyFromParts(&priv, &pub)}
	clear(priv[:])
	return c
}
