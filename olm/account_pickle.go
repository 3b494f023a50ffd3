package olm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/internal/libolmpickle"
	"github.com/xolm/xolm/internal/pickle"
)

// accountFormatVersion is the first field of xolm's own account encoding.
// Version 1 is libolm's version 4 layout with the Ed25519 key stored as its
// seed where there is one (field 2), so that it can still be exported for
// dehydrated devices.
const accountFormatVersion = 1

// Forms of the Ed25519 key in xolm's account encoding.
const (
	ed25519Seed     = 1 // public(32) ‖ seed(32)
	ed25519Expanded = 2 // public(32) ‖ libolm's expanded key(64)
)

// Pickle encrypts the account for storage under a 32-byte key, binding ad
// (for a store: table, row key and schema version) so that the blob cannot be
// moved elsewhere undetected. Restore it with [UnpickleAccount].
func (a *Account) Pickle(key *[32]byte, ad []byte) []byte {
	raw := a.encode()
	defer clear(raw)
	return pickle.Seal(key, pickle.KindAccount, ad, raw)
}

// UnpickleAccount restores an account from [Account.Pickle] output with the
// same key and associated data. Errors: [ErrPickleAuth], [ErrPickleFormat],
// *[PickleVersionError].
func UnpickleAccount(b []byte, key *[32]byte, ad []byte) (*Account, error) {
	raw, err := pickle.Open(key, pickle.KindAccount, ad, b)
	if err != nil {
		return nil, fmt.Errorf("olm: unpickle account: %w", openError(err))
	}
	defer clear(raw)
	d, v, err := versionedDecoder(raw)
	if err != nil {
		return nil, fmt.Errorf("olm: unpickle account: %w", err)
	}
	if v != accountFormatVersion {
		return nil, &PickleVersionError{Object: "account", Format: "xolm", Version: v}
	}
	a := new(Account)
	switch form := d.U8("ed25519 form"); form {
	case ed25519Seed:
		pub, seed := d.Array32("ed25519 public key"), d.Array32("ed25519 seed")
		if k, err := keys.NewEd25519SecretKeyFromSeedAndPublic(&seed, &pub); err != nil {
			d.Fail(fmt.Errorf("%w: %w", libolmpickle.ErrFormat, err))
		} else {
			a.signing = k
		}
		clear(seed[:])
	case ed25519Expanded:
		a.signing = decodeExpandedEd25519(d)
	default:
		d.Fail(fmt.Errorf("%w: ed25519 form %d", libolmpickle.ErrFormat, form))
	}
	a.decodeKeys(d, 4, true)
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("olm: unpickle account: %w: %w", ErrPickleFormat, err)
	}
	return a, nil
}

// encode writes xolm's account encoding.
func (a *Account) encode() []byte {
	var e libolmpickle.Encoder
	e.U32(accountFormatVersion)
	pub := a.signing.PublicKey().Array()
	if seed, ok := a.signing.Seed(); ok {
		e.U8(ed25519Seed)
		e.Bytes(pub[:])
		e.Bytes(seed[:])
		clear(seed[:])
	} else {
		e.U8(ed25519Expanded)
		encodeExpandedEd25519(&e, a.signing)
	}
	a.encodeKeys(&e)
	return e.Result()
}

// encodeKeys writes the fields that follow the Ed25519 key, in libolm's
// version 4 layout: the Curve25519 identity key pair, the one-time keys, the
// fallback keys and the last key ID.
func (a *Account) encodeKeys(e *libolmpickle.Encoder) {
	encodeCurvePair(e, a.identity)
	e.U32(uint32(len(a.oneTimeKeys)))
	for _, k := range a.oneTimeKeys {
		encodeLocalKey(e, k)
	}
	switch {
	case a.fallback == nil:
		e.U8(0)
	case a.prevFallback == nil:
		e.U8(1)
		encodeLocalKey(e, a.fallback)
	default:
		e.U8(2)
		encodeLocalKey(e, a.fallback)
		encodeLocalKey(e, a.prevFallback)
	}
	e.U32(a.lastKeyID)
}

// decodeKeys reads what encodeKeys writes, in the layout of the given libolm
// account version (2: no fallback keys; 3: always two fallback structures,
// present if published; 4: a count). strict rejects key IDs above the
// counter; otherwise the counter is raised past them so no ID is reused.
func (a *Account) decodeKeys(d *libolmpickle.Decoder, layout int, strict bool) {
	a.identity = decodeCurvePair(d)
	n := d.Count("one-time key count", MaxOneTimeKeys)
	a.oneTimeKeys = make([]*localKey, 0, n)
	for range n {
		a.oneTimeKeys = append(a.oneTimeKeys, decodeLocalKey(d))
	}
	switch layout {
	case 3:
		cur, prev := decodeLocalKey(d), decodeLocalKey(d)
		if cur.published {
			a.fallback = cur
			if prev.published {
				a.prevFallback = prev
			}
		}
	case 4:
		switch n := d.U8("fallback key count"); n {
		case 0:
		case 1:
			a.fallback = decodeLocalKey(d)
		case 2:
			a.fallback, a.prevFallback = decodeLocalKey(d), decodeLocalKey(d)
		default:
			d.Fail(fmt.Errorf("%w: %d fallback keys", libolmpickle.ErrFormat, n))
		}
	}
	a.lastKeyID = d.U32("last key id")
	for _, k := range a.allKeys() {
		if uint32(k.id) > a.lastKeyID {
			if strict {
				d.Fail(fmt.Errorf("%w: key id %d above the counter %d", libolmpickle.ErrFormat, k.id, a.lastKeyID))
			}
			a.lastKeyID = uint32(k.id)
		}
	}
	// Newest first, whatever order the writer used (vodozemac writes oldest
	// first), so that the oldest keys are the ones dropped.
	slices.SortStableFunc(a.oneTimeKeys, func(x, y *localKey) int { return int(int64(y.id) - int64(x.id)) })
}

// allKeys returns the one-time and fallback keys.
func (a *Account) allKeys() []*localKey {
	all := slices.Clone(a.oneTimeKeys)
	for _, k := range []*localKey{a.fallback, a.prevFallback} {
		if k != nil {
			all = append(all, k)
		}
	}
	return all
}

// encodeLocalKey writes libolm's one-time key structure:
// id(u32) ‖ published(u8) ‖ public(32) ‖ private(32).
func encodeLocalKey(e *libolmpickle.Encoder, k *localKey) {
	e.U32(uint32(k.id))
	e.Bool(k.published)
	encodeCurvePair(e, k.key)
}

func decodeLocalKey(d *libolmpickle.Decoder) *localKey {
	return &localKey{id: KeyID(d.U32("key id")), published: d.Bool("published"), key: decodeCurvePair(d)}
}

// encodeCurvePair writes a Curve25519 key pair as libolm does: public(32) ‖
// private(32).
func encodeCurvePair(e *libolmpickle.Encoder, k *keys.Curve25519SecretKey) {
	pub, priv := k.PublicKey().Array(), k.PrivateArray()
	e.Bytes(pub[:])
	e.Bytes(priv[:])
	clear(priv[:])
}

// decodeCurvePair reads a key pair from authenticated data, trusting its
// public half as libolm does.
func decodeCurvePair(d *libolmpickle.Decoder) *keys.Curve25519SecretKey {
	pub, priv := d.Array32("curve25519 public key"), d.Array32("curve25519 private key")
	k := keys.NewCurve25519SecretKeyFromParts(&priv, &pub)
	clear(priv[:])
	return k
}

// encodeExpandedEd25519 writes libolm's Ed25519 key pair: public(32) ‖
// expanded private key(64), whose scalar half is clamped.
func encodeExpandedEd25519(e *libolmpickle.Encoder, k *keys.Ed25519SecretKey) {
	pub, exp := k.PublicKey().Array(), k.Expanded()
	e.Bytes(pub[:])
	e.Bytes(exp[:])
	clear(exp[:])
}

// decodeExpandedEd25519 reads what encodeExpandedEd25519 writes and checks
// that the public key belongs to the private key.
func decodeExpandedEd25519(d *libolmpickle.Decoder) *keys.Ed25519SecretKey {
	pub, exp := d.Array32("ed25519 public key"), d.Array64("ed25519 private key")
	k := keys.NewEd25519SecretKeyFromExpanded(&exp)
	clear(exp[:])
	if k.PublicKey().Array() != pub {
		d.Fail(fmt.Errorf("%w: ed25519 public key does not match the private key", libolmpickle.ErrFormat))
	}
	return k
}

// versionedDecoder reads the version that starts every encoding and returns
// a decoder for the rest.
func versionedDecoder(raw []byte) (*libolmpickle.Decoder, uint32, error) {
	if len(raw) < 4 {
		return nil, 0, fmt.Errorf("%w: no version", ErrPickleFormat)
	}
	return libolmpickle.NewDecoder(raw[4:]), binary.BigEndian.Uint32(raw), nil
}

// openError maps the envelope errors of both pickle formats to this
// package's.
func openError(err error) error {
	switch {
	case errors.Is(err, pickle.ErrAuth), errors.Is(err, libolmpickle.ErrBadMAC):
		return ErrPickleAuth
	default:
		return fmt.Errorf("%w: %w", ErrPickleFormat, err)
	}
}
