package olm

import (
	"fmt"

	"github.com/xolm/xolm/internal/libolmpickle"
)

// libolm's pickle format, for moving accounts and sessions between libolm (or
// vodozemac's libolm compatibility) and xolm. Layouts: PROTOCOL.md §4.2.

// libolmAccountVersion is the account pickle version libolm 3.2 writes.
const libolmAccountVersion = 4

// LibolmPickle exports the account in libolm's pickle format (account
// version 4), encrypted under key as libolm does (any length, possibly
// empty). libolm, vodozemac's from_libolm_pickle and [ImportLibolmAccount]
// read it.
//
// libolm stores the Ed25519 key in expanded form, so the seed is not
// exported; the expanded key is written with its scalar clamped, as libolm
// needs to sign validly. The format has a deterministic IV per key: do not
// use it for storage where [Account.Pickle] will do.
func (a *Account) LibolmPickle(key []byte) string {
	var e libolmpickle.Encoder
	e.U32(libolmAccountVersion)
	encodeExpandedEd25519(&e, a.signing)
	a.encodeKeys(&e)
	raw := e.Result()
	defer clear(raw)
	return libolmpickle.Seal(key, raw)
}

// ImportLibolmAccount reads a libolm account pickle of version 2, 3 or 4
// encrypted under key. Version 1 pickles are refused with a
// *[PickleVersionError], as libolm refuses them. Other errors:
// [ErrPickleAuth], [ErrPickleFormat].
//
// The imported account has no Ed25519 seed, only libolm's expanded key, which
// signs identically. One-time keys are ordered newest first, and the key ID
// counter is kept (libolm's field holds the last ID used) or raised past any
// larger ID found, so that no ID is ever reused.
func ImportLibolmAccount(pickle string, key []byte) (*Account, error) {
	raw, err := libolmpickle.Open(key, pickle)
	if err != nil {
		return nil, fmt.Errorf("olm: import libolm account: %w", openError(err))
	}
	defer clear(raw)
	d, v, err := versionedDecoder(raw)
	if err != nil {
		return nil, fmt.Errorf("olm: import libolm account: %w", err)
	}
	if v < 2 || v > libolmAccountVersion {
		return nil, &PickleVersionError{Object: "account", Format: "libolm", Version: v}
	}
	a := &Account{signing: decodeExpandedEd25519(d)}
	a.decodeKeys(d, int(v), false)
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("olm: import libolm account: %w: %w", ErrPickleFormat, err)
	}
	return a, nil
}

// libolm's session pickle versions: 1 is what libolm 3.2 writes; 0x80000001
// was written by its logging branch and adds a dummy u32 after the ratchet.
const (
	libolmSessionVersion        = 1
	libolmSessionVersionLogging = 0x80000001
)

// LibolmPickle exports the session in libolm's pickle format (session
// version 1), encrypted under key as libolm does (any length, possibly
// empty). libolm, vodozemac's from_libolm_pickle and [ImportLibolmSession]
// read it. The format has a deterministic IV per key: do not use it for
// storage where [Session.Pickle] will do.
func (s *Session) LibolmPickle(key []byte) string {
	var e libolmpickle.Encoder
	e.U32(libolmSessionVersion)
	s.encode(&e)
	raw := e.Result()
	defer clear(raw)
	return libolmpickle.Seal(key, raw)
}

// ImportLibolmSession reads a libolm session pickle of version 1 or
// 0x80000001 encrypted under key. Errors: [ErrPickleAuth], [ErrPickleFormat],
// *[PickleVersionError].
func ImportLibolmSession(pickle string, key []byte) (*Session, error) {
	raw, err := libolmpickle.Open(key, pickle)
	if err != nil {
		return nil, fmt.Errorf("olm: import libolm session: %w", openError(err))
	}
	defer clear(raw)
	d, v, err := versionedDecoder(raw)
	if err != nil {
		return nil, fmt.Errorf("olm: import libolm session: %w", err)
	}
	if v != libolmSessionVersion && v != libolmSessionVersionLogging {
		return nil, &PickleVersionError{Object: "session", Format: "libolm", Version: v}
	}
	s := decodeSession(d)
	if v == libolmSessionVersionLogging {
		d.U32("chain index")
	}
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("olm: import libolm session: %w: %w", ErrPickleFormat, err)
	}
	return s, nil
}
