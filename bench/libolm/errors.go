//go:build libolm && cgo

package libolm

/*
#include <olm/olm.h>
*/
import "C"

import "fmt"

// callError reports a libolm function that returned olm_error(), with the
// reason libolm gave (its last_error string, such as "BAD_MESSAGE_MAC").
type callError struct {
	Func   string
	Reason string
}

func (e *callError) Error() string {
	return fmt.Sprintf("libolm: %s: %s", e.Func, e.Reason)
}

// failed reports whether a libolm size_t result is olm_error().
func failed(r C.size_t) bool {
	return r == C.olm_error()
}
