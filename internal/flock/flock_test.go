package flock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func requireFlock(t *testing.T) {
	t.Helper()
	if !Supported {
		t.Skip("flock is not available on this platform")
	}
}

func open(t *testing.T, path string) *File {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTwoOpenFilesExcludeEachOther(t *testing.T) {
	requireFlock(t)
	path := filepath.Join(t.TempDir(), "l")
	a, b := open(t, path), open(t, path)
	if ok, err := a.TryLock(); !ok || err != nil {
		t.Fatalf("first TryLock = %v, %v", ok, err)
	}
	if ok, err := b.TryLock(); ok || err != nil {
		t.Fatalf("second TryLock on another open file = %v, %v; want false, nil", ok, err)
	}
	if ok, err := a.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock again by the holder = %v, %v", ok, err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
}

func TestCloseDropsTheLock(t *testing.T) {
	requireFlock(t)
	path := filepath.Join(t.TempDir(), "l")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.TryLock(); !ok {
		t.Fatal("TryLock failed on a fresh file")
	}
	a.Close()
	if ok, err := open(t, path).TryLock(); !ok || err != nil {
		t.Fatalf("TryLock after the holder closed = %v, %v", ok, err)
	}
}

func TestLockWaitsForUnlock(t *testing.T) {
	requireFlock(t)
	path := filepath.Join(t.TempDir(), "l")
	holder, waiter := open(t, path), open(t, path)
	if ok, _ := holder.TryLock(); !ok {
		t.Fatal("TryLock failed on a fresh file")
	}
	got := make(chan error, 1)
	go func() { got <- waiter.Lock() }()
	select {
	case err := <-got:
		t.Fatalf("Lock returned %v while another file held the lock", err)
	case <-time.After(20 * time.Millisecond):
	}
	holder.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if ok, _ := holder.TryLock(); ok {
		t.Fatal("the waiter's lock did not exclude the former holder")
	}
}

func TestOpenExistingDoesNotCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing")
	if _, err := OpenExisting(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenExisting(missing) = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("OpenExisting created the file")
	}
}

func TestCreateLocksAndRefusesALockedFile(t *testing.T) {
	requireFlock(t)
	path := filepath.Join(t.TempDir(), "l")
	a, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := Create(path); err == nil {
		t.Fatal("Create succeeded on a file locked by another open file")
	}
	if ok, _ := open(t, path).TryLock(); ok {
		t.Fatal("Create did not take the lock")
	}
}

func TestCreateAfterUnlinkLocksTheNewFile(t *testing.T) {
	requireFlock(t)
	path := filepath.Join(t.TempDir(), "l")
	old := open(t, path)
	if ok, _ := old.TryLock(); !ok {
		t.Fatal("TryLock failed on a fresh file")
	}
	// A stale lock file is removed while still locked, as a process does
	// after finding a dead holder's file; Create must lock the file now at
	// the path, not the unlinked one.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if same, err := f.StillAt(); !same || err != nil {
		t.Fatalf("StillAt = %v, %v", same, err)
	}
	if ok, _ := open(t, path).TryLock(); ok {
		t.Fatal("the file at the path is not locked")
	}
	if same, err := old.StillAt(); same || err != nil {
		t.Fatalf("StillAt on the unlinked file = %v, %v", same, err)
	}
}

func TestSharedLocksCoexistAndExcludeExclusive(t *testing.T) {
	requireFlock(t)
	path := filepath.Join(t.TempDir(), "l")
	a, b, c := open(t, path), open(t, path), open(t, path)
	for _, f := range []*File{a, b} {
		if ok, err := f.TryLockShared(); !ok || err != nil {
			t.Fatalf("TryLockShared = %v, %v", ok, err)
		}
	}
	if ok, err := c.TryLock(); ok || err != nil {
		t.Fatalf("exclusive TryLock while shared locks are held = %v, %v", ok, err)
	}
	a.Unlock()
	b.Close()
	if ok, err := c.TryLock(); !ok || err != nil {
		t.Fatalf("exclusive TryLock after the shared locks went = %v, %v", ok, err)
	}
	if ok, err := a.TryLockShared(); ok || err != nil {
		t.Fatalf("TryLockShared while an exclusive lock is held = %v, %v", ok, err)
	}
}
