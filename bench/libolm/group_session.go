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

// outboundGroupSession is a libolm OlmOutboundGroupSession in C memory. Free
// it with free.
type outboundGroupSession struct {
	mem unsafe.Pointer
	p   *C.OlmOutboundGroupSession
}

// newOutboundGroupSession creates a group session from random, which must
// hold olm_init_outbound_group_session_random_length bytes (160: the 128-byte
// ratchet, then the Ed25519 seed).
func newOutboundGroupSession(random []byte) (*outboundGroupSession, error) {
	s := &outboundGroupSession{mem: C.malloc(C.olm_outbound_group_session_size())}
	s.p = C.olm_outbound_group_session(s.mem)
	if n := int(C.olm_init_outbound_group_session_random_length(s.p)); n != len(random) {
		s.free()
		return nil, fmt.Errorf("libolm: outbound group session wants %d random bytes, got %d", n, len(random))
	}
	if failed(C.olm_init_outbound_group_session(s.p, u8Ptr(random), C.size_t(len(random)))) {
		err := s.err("olm_init_outbound_group_session")
		s.free()
		return nil, err
	}
	return s, nil
}

func (s *outboundGroupSession) free() {
	C.olm_clear_outbound_group_session(s.p)
	C.free(s.mem)
	s.mem, s.p = nil, nil
}

func (s *outboundGroupSession) err(fn string) error {
	return &callError{Func: fn, Reason: C.GoString(C.olm_outbound_group_session_last_error(s.p))}
}

// sessionKey returns the base64 session-sharing key at the current index.
func (s *outboundGroupSession) sessionKey() (string, error) {
	buf := make([]byte, C.olm_outbound_group_session_key_length(s.p))
	n := C.olm_outbound_group_session_key(s.p, u8Ptr(buf), C.size_t(len(buf)))
	if failed(n) {
		return "", s.err("olm_outbound_group_session_key")
	}
	return string(buf[:n]), nil
}

// encrypt returns the base64 message of plaintext at the current index and
// advances the ratchet. The message length is asked for on every call: it
// grows by a byte whenever the index needs another varint byte (at 128,
// 16384, …).
func (s *outboundGroupSession) encrypt(plaintext []byte) ([]byte, error) {
	msg := make([]byte, C.olm_group_encrypt_message_length(s.p, C.size_t(len(plaintext))))
	n := C.olm_group_encrypt(s.p, u8Ptr(plaintext), C.size_t(len(plaintext)), u8Ptr(msg), C.size_t(len(msg)))
	if failed(n) {
		return nil, s.err("olm_group_encrypt")
	}
	return msg[:n], nil
}

// inboundGroupSession is a libolm OlmInboundGroupSession in C memory. Free
// it with free.
type inboundGroupSession struct {
	mem unsafe.Pointer
	p   *C.OlmInboundGroupSession
}

// newInboundGroupSession creates a group session from a base64
// session-sharing key, checking its signature.
func newInboundGroupSession(sessionKey string) (*inboundGroupSession, error) {
	s := &inboundGroupSession{mem: C.malloc(C.olm_inbound_group_session_size())}
	if err := s.init(sessionKey); err != nil {
		s.free()
		return nil, err
	}
	return s, nil
}

// init replaces the session with a new one from a base64 session-sharing key.
func (s *inboundGroupSession) init(sessionKey string) error {
	s.p = C.olm_inbound_group_session(s.mem)
	key := []byte(sessionKey)
	if failed(C.olm_init_inbound_group_session(s.p, u8Ptr(key), C.size_t(len(key)))) {
		return s.err("olm_init_inbound_group_session")
	}
	return nil
}

func (s *inboundGroupSession) free() {
	C.olm_clear_inbound_group_session(s.p)
	C.free(s.mem)
	s.mem, s.p = nil, nil
}

func (s *inboundGroupSession) err(fn string) error {
	return &callError{Func: fn, Reason: C.GoString(C.olm_inbound_group_session_last_error(s.p))}
}

// decrypt authenticates and decrypts a base64 message and returns the
// plaintext and the message index. libolm decodes the message in place, so it
// works on a copy; the message's length bounds the plaintext's.
func (s *inboundGroupSession) decrypt(msg string) ([]byte, uint32, error) {
	buf := []byte(msg)
	plaintext := make([]byte, len(msg))
	var index C.uint32_t
	n := C.olm_group_decrypt(s.p, u8Ptr(buf), C.size_t(len(buf)), u8Ptr(plaintext), C.size_t(len(plaintext)), &index)
	if failed(n) {
		return nil, 0, s.err("olm_group_decrypt")
	}
	return plaintext[:n], uint32(index), nil
}

// export returns the base64 exported key at index. When index is at or past
// the session's latest ratchet, libolm advances that ratchet in place to
// index and keeps it, so only the first export at a far index pays for the
// advance.
func (s *inboundGroupSession) export(index uint32) ([]byte, error) {
	buf := make([]byte, C.olm_export_inbound_group_session_length(s.p))
	n := C.olm_export_inbound_group_session(s.p, u8Ptr(buf), C.size_t(len(buf)), C.uint32_t(index))
	if failed(n) {
		return nil, s.err("olm_export_inbound_group_session")
	}
	return buf[:n], nil
}

// u8Ptr is bytesPtr for the uint8_t* parameters of the group session API.
func u8Ptr(b []byte) *C.uint8_t {
	return (*C.uint8_t)(bytesPtr(b))
}
