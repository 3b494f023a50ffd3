//go:build libolm && cgo

package libolm

/*
#cgo LDFLAGS: -lolm
#include <stdlib.h>
#include <olm/olm.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

// account is a libolm OlmAccount in C memory. Free it with free.
type account struct {
	mem unsafe.Pointer
	p   *C.OlmAccount
}

// newAccount creates an account from random, which must hold
// olm_create_account_random_length bytes (64: the Ed25519 seed, then the
// Curve25519 secret key).
func newAccount(random []byte) (*account, error) {
	a := &account{mem: C.malloc(C.olm_account_size())}
	a.p = C.olm_account(a.mem)
	if n := int(C.olm_create_account_random_length(a.p)); n != len(random) {
		a.free()
		return nil, fmt.Errorf("libolm: olm_create_account wants %d random bytes, got %d", n, len(random))
	}
	r := C.olm_create_account(a.p, bytesPtr(random), C.size_t(len(random)))
	if failed(r) {
		err := a.err("olm_create_account")
		a.free()
		return nil, err
	}
	return a, nil
}

func (a *account) free() {
	C.olm_clear_account(a.p)
	C.free(a.mem)
	a.mem, a.p = nil, nil
}

func (a *account) err(fn string) error {
	return &callError{Func: fn, Reason: C.GoString(C.olm_account_last_error(a.p))}
}

// curve25519 returns the account's identity key in base64.
func (a *account) curve25519() (string, error) {
	buf := make([]byte, C.olm_account_identity_keys_length(a.p))
	if failed(C.olm_account_identity_keys(a.p, bytesPtr(buf), C.size_t(len(buf)))) {
		return "", a.err("olm_account_identity_keys")
	}
	var keys struct{ Curve25519 string }
	if err := json.Unmarshal(buf, &keys); err != nil {
		return "", fmt.Errorf("libolm: identity keys: %w", err)
	}
	return keys.Curve25519, nil
}

// generateFallbackKey makes a new fallback key from 32 random bytes.
func (a *account) generateFallbackKey(random []byte) error {
	if n := int(C.olm_account_generate_fallback_key_random_length(a.p)); n != len(random) {
		return fmt.Errorf("libolm: fallback key wants %d random bytes, got %d", n, len(random))
	}
	if failed(C.olm_account_generate_fallback_key(a.p, bytesPtr(random), C.size_t(len(random)))) {
		return a.err("olm_account_generate_fallback_key")
	}
	return nil
}

// fallbackKey returns the public half of the current fallback key in base64.
func (a *account) fallbackKey() (string, error) {
	buf := make([]byte, C.olm_account_unpublished_fallback_key_length(a.p))
	n := C.olm_account_unpublished_fallback_key(a.p, bytesPtr(buf), C.size_t(len(buf)))
	if failed(n) {
		return "", a.err("olm_account_unpublished_fallback_key")
	}
	var keys struct{ Curve25519 map[string]string }
	if err := json.Unmarshal(buf[:n], &keys); err != nil {
		return "", fmt.Errorf("libolm: fallback key: %w", err)
	}
	for _, k := range keys.Curve25519 {
		return k, nil
	}
	return "", fmt.Errorf("libolm: the account has no unpublished fallback key")
}

// pickle returns the account in libolm's pickle format under key.
func (a *account) pickle(key []byte) (string, error) {
	buf := make([]byte, C.olm_pickle_account_length(a.p))
	n := C.olm_pickle_account(a.p, bytesPtr(key), C.size_t(len(key)), bytesPtr(buf), C.size_t(len(buf)))
	if failed(n) {
		return "", a.err("olm_pickle_account")
	}
	return string(buf[:n]), nil
}

// bytesPtr returns the address of b's first byte for a C call, or nil for an
// empty b. b must hold no Go pointers, which a []byte never does.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.SliceData(b))
}
