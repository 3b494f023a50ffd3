package canonicaljson

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/keys"
)

// The members of a signed object that the signature does not cover.
const (
	signaturesKey = "signatures"
	unsignedKey   = "unsigned"
)

// ed25519Prefix is the signing algorithm half of a signing key identifier.
const ed25519Prefix = "ed25519:"

// ErrBadSignature reports a signature that is present but does not verify:
// it fails the Ed25519 check, is not valid base64 of 64 bytes, or is not a
// string. Nothing more specific is said.
var ErrBadSignature = errors.New("canonicaljson: signature verification failed")

// ErrMissingSignature is matched by every *MissingSignatureError.
var ErrMissingSignature = errors.New("canonicaljson: missing signature")

// MissingSignatureError reports an object with no signature by the given
// entity and key. It matches ErrMissingSignature.
type MissingSignatureError struct {
	Entity string // a user ID or server name
	KeyID  string // the signing key identifier, e.g. "ed25519:DEVICEID"
}

func (e *MissingSignatureError) Error() string {
	return fmt.Sprintf("canonicaljson: no signature by %q with key %q", shorten(e.Entity), shorten(e.KeyID))
}

// Is makes errors.Is(err, ErrMissingSignature) true.
func (e *MissingSignatureError) Is(target error) bool { return target == ErrMissingSignature }

// Sign signs the JSON object obj as the spec's "Signing JSON" describes: it
// removes "signatures" and "unsigned", signs the canonical form of the rest
// with key, adds the unpadded base64 signature at
// signatures[entity]["ed25519:"+keyID] (keeping every other signature, and
// replacing one already there under that name), and puts "unsigned" back.
//
// keyID is the key identifier without its algorithm, e.g. a device ID;
// entity is the signer's user ID (or server name); both must be valid UTF-8.
// The result is the whole signed object in canonical form. Errors are those
// of [Canonicalize], or ErrNotObject.
func Sign(obj json.RawMessage, entity, keyID string, key *keys.Ed25519SecretKey) (json.RawMessage, error) {
	if !utf8.ValidString(entity) || !utf8.ValidString(keyID) {
		return nil, fmt.Errorf("%w: in the entity or key ID to sign as", ErrInvalidUTF8)
	}
	root, err := parseObject(obj)
	if err != nil {
		return nil, err
	}
	root, sigs, hasSigs := root.without(signaturesKey)
	root, unsigned, hasUnsigned := root.without(unsignedKey)

	signature := b64.Encode(key.Sign(appendValue(nil, root)))

	var all object
	if hasSigs {
		if all, err = asObject(sigs, signaturesKey); err != nil {
			return nil, err
		}
	}
	var mine object
	if v, ok := all.get(entity); ok {
		if mine, err = asObject(v, signaturesKey+"."+entity); err != nil {
			return nil, err
		}
	}
	mine = mine.with(ed25519Prefix+keyID, signature)
	all = all.with(entity, mine)
	root = root.with(signaturesKey, all)
	if hasUnsigned {
		root = root.with(unsignedKey, unsigned)
	}
	return appendValue(nil, root), nil
}

// Verify checks that the JSON object obj carries a valid signature by entity
// with the Ed25519 key "ed25519:"+keyID, whose public half is pub: the
// signature at signatures[entity]["ed25519:"+keyID] must verify over the
// canonical form of obj without "signatures" and "unsigned".
//
// It returns nil, a *MissingSignatureError when there is no such signature,
// ErrBadSignature when there is one and it does not verify, or an error from
// parsing obj.
func Verify(obj json.RawMessage, entity, keyID string, pub keys.Ed25519PublicKey) error {
	root, err := parseObject(obj)
	if err != nil {
		return err
	}
	keyName := ed25519Prefix + keyID
	root, sigs, ok := root.without(signaturesKey)
	if !ok {
		return &MissingSignatureError{Entity: entity, KeyID: keyName}
	}
	root, _, _ = root.without(unsignedKey)

	all, ok := sigs.(object)
	if !ok {
		return ErrBadSignature
	}
	v, ok := all.get(entity)
	if !ok {
		return &MissingSignatureError{Entity: entity, KeyID: keyName}
	}
	mine, ok := v.(object)
	if !ok {
		return ErrBadSignature
	}
	v, ok = mine.get(keyName)
	if !ok {
		return &MissingSignatureError{Entity: entity, KeyID: keyName}
	}
	encoded, ok := v.(string)
	if !ok {
		return ErrBadSignature
	}
	sig, err := b64.DecodeFixed(encoded, keys.SignatureSize)
	if err != nil {
		return ErrBadSignature
	}
	if !pub.Verify(appendValue(nil, root), sig) {
		return ErrBadSignature
	}
	return nil
}

// parseObject parses raw, which must hold a JSON object.
func parseObject(raw []byte) (object, error) {
	v, err := parse(raw)
	if err != nil {
		return nil, err
	}
	return asObject(v, "value")
}

func asObject(v any, what string) (object, error) {
	o, ok := v.(object)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotObject, shorten(what))
	}
	return o, nil
}

// find returns where key is in o, or where it would be inserted.
func (o object) find(key string) (int, bool) {
	return slices.BinarySearchFunc(o, key, func(m member, k string) int { return strings.Compare(m.key, k) })
}

// get returns the value of key.
func (o object) get(key string) (any, bool) {
	i, ok := o.find(key)
	if !ok {
		return nil, false
	}
	return o[i].val, true
}

// without returns o without key, and key's value if it was there. o itself
// is left unchanged.
func (o object) without(key string) (object, any, bool) {
	i, ok := o.find(key)
	if !ok {
		return o, nil, false
	}
	return slices.Delete(slices.Clone(o), i, i+1), o[i].val, true
}

// with returns o with key set to val, in sorted position. o itself is left
// unchanged.
func (o object) with(key string, val any) object {
	i, ok := o.find(key)
	out := slices.Clone(o)
	if ok {
		out[i].val = val
		return out
	}
	return slices.Insert(out, i, member{key, val})
}
