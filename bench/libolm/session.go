//go:build libolm && cgo

package libolm

/*
#include <stdlib.h>
#include <olm/olm.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// session is a libolm OlmSession in C memory. Free it with free; the
// create and unpickle methods reuse the memory for a new session.
type session struct {
	mem unsafe.Pointer
	p   *C.OlmSession
}

func newSession() *session {
	s := &session{mem: C.malloc(C.olm_session_size())}
	s.p = C.olm_session(s.mem)
	return s
}

func (s *session) free() {
	C.olm_clear_session(s.p)
	C.free(s.mem)
	s.mem, s.p = nil, nil
}

func (s *session) err(fn string) error {
	return &callError{Func: fn, Reason: C.GoString(C.olm_session_last_error(s.p))}
}

// createOutbound starts a session from a to the holder of the base64
// identity and one-time keys. random must hold 64 bytes: the base key's
// secret, then the first ratchet key's.
func (s *session) createOutbound(a *account, identityKey, oneTimeKey string, random []byte) error {
	s.p = C.olm_session(s.mem)
	if n := int(C.olm_create_outbound_session_random_length(s.p)); n != len(random) {
		return fmt.Errorf("libolm: outbound session wants %d random bytes, got %d", n, len(random))
	}
	id, otk := []byte(identityKey), []byte(oneTimeKey)
	r := C.olm_create_outbound_session(s.p, a.p,
		bytesPtr(id), C.size_t(len(id)), bytesPtr(otk), C.size_t(len(otk)),
		bytesPtr(random), C.size_t(len(random)))
	if failed(r) {
		return s.err("olm_create_outbound_session")
	}
	return nil
}

// createInbound sets up the session that the base64 pre-key message msg
// started. libolm decodes msg in place, so it works on a copy; it neither
// decrypts msg nor removes the one-time key.
func (s *session) createInbound(a *account, msg string) error {
	s.p = C.olm_session(s.mem)
	buf := []byte(msg)
	if failed(C.olm_create_inbound_session(s.p, a.p, bytesPtr(buf), C.size_t(len(buf)))) {
		return s.err("olm_create_inbound_session")
	}
	return nil
}

// encryptRandomLength is how many random bytes the next encrypt takes: 32
// when it starts a new sending chain, else 0.
func (s *session) encryptRandomLength() int {
	return int(C.olm_encrypt_random_length(s.p))
}

// encrypt returns the message type and the base64 body of plaintext.
func (s *session) encrypt(plaintext, random []byte) (int, []byte, error) {
	if n := s.encryptRandomLength(); n != len(random) {
		return 0, nil, fmt.Errorf("libolm: encrypt wants %d random bytes, got %d", n, len(random))
	}
	typ := int(C.olm_encrypt_message_type(s.p))
	body := make([]byte, C.olm_encrypt_message_length(s.p, C.size_t(len(plaintext))))
	n := C.olm_encrypt(s.p, bytesPtr(plaintext), C.size_t(len(plaintext)),
		bytesPtr(random), C.size_t(len(random)), bytesPtr(body), C.size_t(len(body)))
	if failed(n) {
		return 0, nil, s.err("olm_encrypt")
	}
	return typ, body[:n], nil
}

// decrypt authenticates and decrypts a base64 body of the given type.
// libolm decodes the body in place, so it works on a copy. The plaintext is
// shorter than the body, so the body's length bounds it without another
// pass over a second copy (olm_decrypt_max_plaintext_length).
func (s *session) decrypt(typ int, body string) ([]byte, error) {
	buf := []byte(body)
	plaintext := make([]byte, len(body))
	n := C.olm_decrypt(s.p, C.size_t(typ), bytesPtr(buf), C.size_t(len(buf)),
		bytesPtr(plaintext), C.size_t(len(plaintext)))
	if failed(n) {
		return nil, s.err("olm_decrypt")
	}
	return plaintext[:n], nil
}

// pickle returns the session in libolm's pickle format under key.
func (s *session) pickle(key []byte) (string, error) {
	buf := make([]byte, C.olm_pickle_session_length(s.p))
	n := C.olm_pickle_session(s.p, bytesPtr(key), C.size_t(len(key)), bytesPtr(buf), C.size_t(len(buf)))
	if failed(n) {
		return "", s.err("olm_pickle_session")
	}
	return string(buf[:n]), nil
}

// unpickle replaces the session with the one pickled under key.
func (s *session) unpickle(key []byte, pickled string) error {
	s.p = C.olm_session(s.mem)
	buf := []byte(pickled)
	if failed(C.olm_unpickle_session(s.p, bytesPtr(key), C.size_t(len(key)), bytesPtr(buf), C.size_t(len(buf)))) {
		return s.err("olm_unpickle_session")
	}
	return nil
}
