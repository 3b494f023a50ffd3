package cryptostore

import (
	"errors"
	"fmt"
)

// ErrNotStore reports a file that is a SQLite database but not an xolm store,
// or not a database at all. The file is left untouched.
var ErrNotStore = errors.New("cryptostore: not an xolm store")

// ErrOpen is matched by every failure to open or create the store file
// itself: a missing or read-only directory, a file that cannot be read.
var ErrOpen = errors.New("cryptostore: cannot open the store file")

// ErrAccountMismatch is returned by PutAccount for an account other than the
// one the store holds (another user, device or identity key).
var ErrAccountMismatch = errors.New("cryptostore: the store belongs to another account")

// ErrNotFound is returned by lookups of a row that does not exist.
var ErrNotFound = errors.New("cryptostore: not found")

// ErrCorrupt is matched by every *CorruptRowError.
var ErrCorrupt = errors.New("cryptostore: corrupt row")

// SchemaTooNewError reports a store written by a newer xolm. Opening it would
// risk misreading its rows, so it is refused and left untouched.
type SchemaTooNewError struct {
	Found, Supported int
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("cryptostore: schema version %d is newer than the supported %d", e.Found, e.Supported)
}

// CorruptRowError reports a sealed value that failed authentication or
// decoding: a flipped byte, a row copied onto another key, or a value written
// under another store key. Table and Key say where; nothing was changed.
type CorruptRowError struct {
	Table string
	Key   string
	Err   error
}

func (e *CorruptRowError) Error() string {
	return fmt.Sprintf("cryptostore: corrupt row in %s at key %q: %v", e.Table, e.Key, e.Err)
}

// Unwrap returns the underlying failure.
func (e *CorruptRowError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptRowError) Is(target error) bool { return target == ErrCorrupt }
