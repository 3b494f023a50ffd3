// Package nodepeer runs the reference implementations that xolm's tests compare
// against, libolm (@matrix-org/olm) and matrix-rust-sdk's OlmMachine
// (@matrix-org/matrix-sdk-crypto-wasm), as Node scripts in tests/node.
//
// [Require] makes sure the npm packages pinned by tests/node/package-lock.json
// are installed, and [Start] launches one peer script and returns a [Peer]
// whose [Peer.Call] sends it one JSON request and decodes its reply.
//
// Tests that need a peer are skipped when node or npm is missing or the
// install fails, unless the environment has CI=true, where they fail instead.
package nodepeer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// peerDirName is where the npm project lives, relative to the repository root.
	peerDirName = "tests/node"
	// lockFileName is the file, inside the npm project, that installs lock.
	// It lies outside node_modules because npm ci deletes node_modules.
	lockFileName = ".install.lock"
	// stampName is the file, inside node_modules, holding the hex SHA-256 of
	// the package-lock.json that node_modules was installed from.
	stampName = ".package-lock.sha256"
	// installTimeout bounds one npm ci.
	installTimeout = 5 * time.Minute
)

// Require returns the directory of the Node peers, tests/node, once node and
// npm are on the PATH and the pinned packages are installed there. It installs
// them with npm ci when node_modules is missing or was installed from another
// package-lock.json, at most once per process; concurrent test processes
// serialize on an OS file lock, so exactly one of them installs.
//
// When the peers are unavailable, Require skips the test, or fails it if the
// environment has CI=true.
func Require(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "nodepeer: %s not found on PATH: %v", tool, err)
		}
	}
	r := repoPeers()
	if r.err != nil {
		unavailable(t, "nodepeer: installing the Node peers: %v\n%s", r.err, r.out)
	}
	return r.dir
}

// installResult is the outcome of installing the repository's peers.
type installResult struct {
	dir string // tests/node
	out []byte // npm's output, when it ran
	err error
}

// repoPeers installs the repository's peers once per process and remembers
// the outcome.
var repoPeers = sync.OnceValue(func() installResult {
	root, err := repoRoot()
	if err != nil {
		return installResult{err: err}
	}
	dir := filepath.Join(root, filepath.FromSlash(peerDirName))
	_, out, err := ensureInstalled(dir)
	return installResult{dir: dir, out: out, err: err}
})

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	} else {
		t.Skipf(format, args...)
	}
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("nodepeer: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("nodepeer: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ensureInstalled runs npm ci in dir unless dir/node_modules is current, under
// an exclusive lock on dir/.install.lock, and reports whether it ran. The check
// is repeated after the lock is acquired, so a process that waited for another
// one's install does not install again. out is npm's output when it ran.
func ensureInstalled(dir string) (installed bool, out []byte, err error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, nil, fmt.Errorf("nodepeer: %w", err)
	}
	defer lock.Close()
	if err := flock(lock, syscall.LOCK_EX); err != nil {
		return false, nil, fmt.Errorf("nodepeer: lock %s: %w", lock.Name(), err)
	}
	defer flock(lock, syscall.LOCK_UN)

	digest, err := lockfileDigest(dir)
	if err != nil {
		return false, nil, err
	}
	if current(dir, digest) {
		return false, nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	out, err = cmd.CombinedOutput()
	if err != nil {
		return true, out, fmt.Errorf("nodepeer: npm ci in %s: %w", dir, err)
	}
	if err := writeStamp(dir, digest); err != nil {
		return true, out, err
	}
	return true, out, nil
}

// flock applies how (LOCK_EX or LOCK_UN) to f, retrying when a signal
// interrupts the wait.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// lockfileDigest is the hex SHA-256 of dir/package-lock.json.
func lockfileDigest(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", fmt.Errorf("nodepeer: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// current reports whether dir/node_modules was installed from the
// package-lock.json whose digest is given.
func current(dir, digest string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", stampName))
	return err == nil && bytes.Equal(bytes.TrimSpace(b), []byte(digest))
}

// writeStamp records digest in node_modules through a rename, so a reader
// never sees a partial stamp.
func writeStamp(dir, digest string) error {
	path := filepath.Join(dir, "node_modules", stampName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(digest+"\n"), 0o644); err != nil {
		return fmt.Errorf("nodepeer: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("nodepeer: %w", err)
	}
	return nil
}
