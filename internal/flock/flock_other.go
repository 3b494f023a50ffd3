//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package flock

// Supported reports whether this platform has flock.
const Supported = false

// TryLock returns ErrUnsupported.
func (f *File) TryLock() (bool, error) { return false, ErrUnsupported }

// TryLockShared returns ErrUnsupported.
func (f *File) TryLockShared() (bool, error) { return false, ErrUnsupported }

// Lock returns ErrUnsupported.
func (f *File) Lock() error { return ErrUnsupported }

// Unlock returns ErrUnsupported.
func (f *File) Unlock() error { return ErrUnsupported }
