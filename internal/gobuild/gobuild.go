// Package gobuild builds the helper programs that cross-process tests and
// benchmarks start as real OS processes.
package gobuild

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binary compiles the main package pkg into dir/name with the go command
// found on PATH (the one running the tests) and returns the binary's path.
func Binary(dir, pkg, name string, flags ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("gobuild: the go command is not on PATH: %w", err)
	}
	bin := filepath.Join(dir, name)
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	if out, err := exec.Command(goBin, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gobuild: build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// TestMain is the TestMain of a package whose tests start a helper program:
// it builds the program once with build into a temporary directory, stores
// its path in *bin, runs the tests and removes the directory.
func TestMain(m *testing.M, prefix string, build func(dir string) (string, error), bin *string) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin, err = build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
