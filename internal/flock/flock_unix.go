//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package flock

import (
	"errors"
	"syscall"
)

// Supported reports whether this platform has flock.
const Supported = true

// TryLock takes the exclusive lock if no other open file holds it, without
// waiting. It reports whether the lock is now held.
func (f *File) TryLock() (bool, error) { return f.try(syscall.LOCK_EX) }

// TryLockShared takes a shared lock if no other open file holds the
// exclusive one, without waiting. Shared locks coexist; an exclusive TryLock
// fails while any is held. It reports whether the lock is now held.
func (f *File) TryLockShared() (bool, error) { return f.try(syscall.LOCK_SH) }

func (f *File) try(how int) (bool, error) {
	for {
		err := syscall.Flock(int(f.f.Fd()), how|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		default:
			return false, &syscallError{op: "lock", path: f.path, err: err}
		}
	}
}

// Lock waits for the exclusive lock. The wait cannot be cancelled: a caller
// that may give up runs Lock in a goroutine on a File of its own, and that
// goroutine unlocks and closes the File when Lock returns late.
func (f *File) Lock() error {
	for {
		err := syscall.Flock(int(f.f.Fd()), syscall.LOCK_EX)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return &syscallError{op: "lock", path: f.path, err: err}
		}
		return nil
	}
}

// Unlock drops the lock.
func (f *File) Unlock() error {
	if err := syscall.Flock(int(f.f.Fd()), syscall.LOCK_UN); err != nil {
		return &syscallError{op: "unlock", path: f.path, err: err}
	}
	return nil
}

type syscallError struct {
	op, path string
	err      error
}

func (e *syscallError) Error() string { return "flock: " + e.op + " " + e.path + ": " + e.err.Error() }
func (e *syscallError) Unwrap() error { return e.err }
