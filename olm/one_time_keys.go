package olm

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/keys"
)

// MaxOneTimeKeys is the number of one-time keys an account holds, as in libolm
// (include/olm/account.hh). Generating more drops the oldest. Clients
// conventionally keep half of it, 50, published on the server.
const MaxOneTimeKeys = 100

// MaxNumberOfOneTimeKeys returns [MaxOneTimeKeys], libolm's
// olm_account_max_number_of_one_time_keys.
func (a *Account) MaxNumberOfOneTimeKeys() int { return MaxOneTimeKeys }

// GenerateOneTimeKeys creates n new one-time keys (0 ≤ n ≤ MaxOneTimeKeys)
// from 32n bytes of rand, read at once and used in ID order, as libolm does.
// The keys take the next IDs of the account's counter and are unpublished;
// once the account holds MaxOneTimeKeys, the oldest keys are dropped.
func (a *Account) GenerateOneTimeKeys(rand io.Reader, n int) error {
	if n < 0 || n > MaxOneTimeKeys {
		return fmt.Errorf("olm: cannot generate %d one-time keys: the account holds at most %d", n, MaxOneTimeKeys)
	}
	if uint64(a.lastKeyID)+uint64(n) > math.MaxUint32 {
		return ErrKeyIDsExhausted
	}
	b := make([]byte, 32*n)
	defer clear(b)
	if _, err := io.ReadFull(rand, b); err != nil {
		return fmt.Errorf("olm: generate one-time keys: reading randomness: %w", err)
	}
	fresh := make([]*localKey, n)
	for i := range n {
		fresh[n-1-i] = &localKey{ // newest first
			id:  KeyID(a.lastKeyID + uint32(i) + 1),
			key: keys.NewCurve25519SecretKeyFromArray((*[32]byte)(b[32*i:])),
		}
	}
	all := append(fresh, a.oneTimeKeys...)
	keep := min(len(all), MaxOneTimeKeys)
	for _, k := range all[keep:] {
		k.key.Clear()
	}
	a.oneTimeKeys = slices.Clip(all[:keep])
	a.lastKeyID += uint32(n)
	return nil
}

// OneTimeKeys returns the unpublished one-time keys, newest first.
func (a *Account) OneTimeKeys() []OneTimeKey {
	var out []OneTimeKey
	for _, k := range a.oneTimeKeys {
		if !k.published {
			out = append(out, k.public())
		}
	}
	return out
}

// OneTimeKeysJSON returns the unpublished one-time keys as libolm writes them,
// exactly: {"curve25519":{"<id>":"<key>",…}}, newest first.
func (a *Account) OneTimeKeysJSON() []byte { return appendKeyMapJSON(nil, a.OneTimeKeys()) }

// MarkKeysAsPublished marks every one-time key and the current fallback key
// as published, so they no longer appear in [Account.OneTimeKeys] and
// [Account.UnpublishedFallbackKey]. Call it once the server has accepted them.
func (a *Account) MarkKeysAsPublished() {
	for _, k := range a.oneTimeKeys {
		k.published = true
	}
	if a.fallback != nil {
		a.fallback.published = true
	}
}

// GenerateFallbackKey creates a new fallback key from 32 bytes of rand. It
// takes the next ID of the same counter as one-time keys (as libolm). The
// current fallback key becomes the previous one, which stays usable until
// [Account.ForgetOldFallbackKey]; an older previous key is dropped.
func (a *Account) GenerateFallbackKey(rand io.Reader) error {
	if a.lastKeyID == math.MaxUint32 {
		return ErrKeyIDsExhausted
	}
	k, err := keys.GenerateCurve25519SecretKey(rand)
	if err != nil {
		return fmt.Errorf("olm: generate fallback key: %w", err)
	}
	if a.prevFallback != nil {
		a.prevFallback.key.Clear()
	}
	a.lastKeyID++
	a.prevFallback, a.fallback = a.fallback, &localKey{id: KeyID(a.lastKeyID), key: k}
	return nil
}

// FallbackKey returns the current fallback key, published or not.
func (a *Account) FallbackKey() (OneTimeKey, bool) {
	if a.fallback == nil {
		return OneTimeKey{}, false
	}
	return a.fallback.public(), true
}

// UnpublishedFallbackKey returns the current fallback key if it has not been
// marked as published.
func (a *Account) UnpublishedFallbackKey() (OneTimeKey, bool) {
	if a.fallback == nil || a.fallback.published {
		return OneTimeKey{}, false
	}
	return a.fallback.public(), true
}

// FallbackKeyJSON returns [Account.FallbackKey] as libolm writes it, exactly:
// {"curve25519":{"<id>":"<key>"}}, or {"curve25519":{}} when there is none.
func (a *Account) FallbackKeyJSON() []byte { return optionalKeyJSON(a.FallbackKey()) }

// UnpublishedFallbackKeyJSON returns [Account.UnpublishedFallbackKey] as
// libolm writes it, exactly, like [Account.FallbackKeyJSON].
func (a *Account) UnpublishedFallbackKeyJSON() []byte {
	return optionalKeyJSON(a.UnpublishedFallbackKey())
}

func optionalKeyJSON(k OneTimeKey, ok bool) []byte {
	if !ok {
		return appendKeyMapJSON(nil, nil)
	}
	return appendKeyMapJSON(nil, []OneTimeKey{k})
}

// ForgetOldFallbackKey drops the previous fallback key. Call it once peers
// have had time to use the current one.
func (a *Account) ForgetOldFallbackKey() {
	if a.prevFallback != nil {
		a.prevFallback.key.Clear()
		a.prevFallback = nil
	}
}

// findKey looks a public key up the way libolm and vodozemac do: one-time
// keys first, then the current fallback key, then the previous one. pos is
// the key's position among the one-time keys, or -1 for a fallback key.
func (a *Account) findKey(pub Curve25519PublicKey) (k *localKey, pos int) {
	for i, k := range a.oneTimeKeys {
		if k.key.PublicKey() == pub {
			return k, i
		}
	}
	for _, k := range []*localKey{a.fallback, a.prevFallback} {
		if k != nil && k.key.PublicKey() == pub {
			return k, -1
		}
	}
	return nil, -1
}

// RemoveOneTimeKey erases the one-time key whose public key is pub, as
// NewInboundSession does with the key it used, and reports whether the
// account held it. Fallback keys are not one-time keys and stay.
func (a *Account) RemoveOneTimeKey(pub Curve25519PublicKey) bool {
	k, pos := a.findKey(pub)
	if k == nil || pos < 0 {
		return false
	}
	a.removeOneTimeKey(pos)
	return true
}

// removeOneTimeKey erases and removes the one-time key at pos.
func (a *Account) removeOneTimeKey(pos int) {
	a.oneTimeKeys[pos].key.Clear()
	a.oneTimeKeys = slices.Delete(a.oneTimeKeys, pos, pos+1)
}

// KeyID identifies a one-time or fallback key. IDs come from one counter per
// account that starts at 1 and is never reused, as in libolm.
type KeyID uint32

// String returns the ID as Matrix and libolm write it: the unpadded base64 of
// its big-endian four bytes ("AAAAAQ" for 1).
func (id KeyID) String() string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(id))
	return b64.Encode(b[:])
}

// OneTimeKey is the public half of a one-time or fallback key with its ID.
type OneTimeKey struct {
	ID  KeyID
	Key Curve25519PublicKey
}

// appendKeyMapJSON appends libolm's key-map JSON, {"curve25519":{"<id>":"<key>",…}},
// with the keys in the order given.
func appendKeyMapJSON(b []byte, ks []OneTimeKey) []byte {
	b = append(b, `{"curve25519":{`...)
	for i, k := range ks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k.ID.String()...)
		b = append(b, `":"`...)
		b = append(b, k.Key.String()...)
		b = append(b, '"')
	}
	return append(b, "}}"...)
}
