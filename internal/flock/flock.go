// Package flock wraps the kernel's advisory whole-file locks (flock(2)) the
// way the cross-process lease uses them: an exclusive lock per open file, a
// non-blocking attempt, and a blocking wait that cannot be interrupted.
//
// A lock belongs to one open file description: two Files opened on the same
// path conflict even inside one process, and the kernel drops a lock when the
// process that holds it dies. Where flock is not available (see [Supported]),
// every locking call returns [ErrUnsupported] and callers fall back to
// polling and lease expiry.
package flock

import (
	"errors"
	"os"
)

// ErrUnsupported is returned by locking calls on platforms without flock.
var ErrUnsupported = errors.New("flock: not supported on this platform")

// File is an open file used only for its lock. A File is safe for use by one
// goroutine at a time; Unlock and Close may be called from any goroutine once
// the call that took the lock has returned.
type File struct {
	f    *os.File // constant
	path string   // constant
}

// Open opens path for locking, creating it (mode 0600) if it does not exist.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &File{f: f, path: path}, nil
}

// OpenExisting opens path for locking without creating it; a missing file is
// reported with an error matching [os.ErrNotExist].
func OpenExisting(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	return &File{f: f, path: path}, nil
}

// Path returns the path the File was opened with.
func (f *File) Path() string { return f.path }

// Close closes the file, which drops any lock it holds.
func (f *File) Close() error { return f.f.Close() }

// Create creates (or opens) path and takes its exclusive lock without
// blocking, making sure the locked file is still the one named path: another
// process may unlink a lock file it found unlocked between our open and our
// lock, and a lock on an unlinked file protects nothing. It fails if another
// open file holds the lock.
func Create(path string) (*File, error) {
	const attempts = 8
	for range attempts {
		f, err := Open(path)
		if err != nil {
			return nil, err
		}
		ok, err := f.TryLock()
		if err != nil || !ok {
			f.Close()
			if err == nil {
				err = errors.New("flock: " + path + " is locked by another file")
			}
			return nil, err
		}
		same, err := f.StillAt()
		if err != nil {
			f.Close()
			return nil, err
		}
		if same {
			return f, nil
		}
		f.Close() // unlinked under us: try again with the new file
	}
	return nil, errors.New("flock: " + path + " keeps being replaced")
}

// StillAt reports whether the open file is the file now named by its path:
// false once it was unlinked or replaced.
func (f *File) StillAt() (bool, error) {
	open, err := f.f.Stat()
	if err != nil {
		return false, err
	}
	named, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(open, named), nil
}
