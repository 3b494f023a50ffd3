package xprocess

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xolm/xolm/internal/flock"
)

// MaxRoleLen bounds Options.Role. The role is stored in every lease row and
// names a file on disk, so it is kept short and to a portable alphabet.
const MaxRoleLen = 64

// nonceLen is the number of random bytes in a holder nonce: 64 bits make a
// collision between two instances with the same role and pid (pid reuse)
// negligible.
const nonceLen = 8

// Holder identifies one process instance (invariant 4): the role says what
// kind of process it is, the pid which OS process, and the random nonce makes
// two instances distinct even when they share role and pid. A role alone is
// never an identity.
type Holder struct {
	Role  string
	PID   int
	Nonce string // 16 lowercase hex digits
}

// String returns the form stored in the lease row, "role:pid:nonce".
func (h Holder) String() string {
	return h.Role + ":" + strconv.Itoa(h.PID) + ":" + h.Nonce
}

func newHolder(role string) (Holder, error) {
	if err := checkRole(role); err != nil {
		return Holder{}, err
	}
	var b [nonceLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Holder{}, fmt.Errorf("xprocess: holder nonce: %w", err)
	}
	return Holder{Role: role, PID: os.Getpid(), Nonce: hex.EncodeToString(b[:])}, nil
}

func checkRole(role string) error {
	if role == "" || len(role) > MaxRoleLen {
		return fmt.Errorf("xprocess: role %q: length %d, want 1 to %d", role, len(role), MaxRoleLen)
	}
	for _, c := range role {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("xprocess: role %q: only letters, digits, '.', '_' and '-' are allowed", role)
		}
	}
	return nil
}

var errBadHolder = errors.New("xprocess: malformed holder")

// parseHolder parses Holder.String's form strictly; a holder read from the
// database names a file, so nothing else is accepted.
func parseHolder(s string) (Holder, error) {
	role, rest, ok := strings.Cut(s, ":")
	if !ok || checkRole(role) != nil {
		return Holder{}, errBadHolder
	}
	pidText, nonce, ok := strings.Cut(rest, ":")
	if !ok {
		return Holder{}, errBadHolder
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != pidText {
		return Holder{}, errBadHolder
	}
	if len(nonce) != 2*nonceLen || strings.ToLower(nonce) != nonce {
		return Holder{}, errBadHolder
	}
	if _, err := hex.DecodeString(nonce); err != nil {
		return Holder{}, errBadHolder
	}
	return Holder{Role: role, PID: pid, Nonce: nonce}, nil
}

// Liveness: every instance holds, for its lifetime, an exclusive flock on
// <db path>.holders/<holder>.lock. The kernel drops the lock when the process
// dies, so a contender that can lock a holder's file knows that holder is gone
// and need not wait out its lease. A frozen process keeps its lock.

func livenessDir(dbPath string) string { return dbPath + ".holders" }

func livenessPath(dir string, h Holder) string { return filepath.Join(dir, h.String()+".lock") }

// markAlive creates and locks this instance's liveness file.
func markAlive(dir string, h Holder) (*flock.File, error) {
	if !flock.Supported {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("xprocess: liveness directory: %w", err)
	}
	f, err := flock.Create(livenessPath(dir, h))
	if err != nil {
		return nil, fmt.Errorf("xprocess: liveness file: %w", err)
	}
	return f, nil
}

// markGone removes and unlocks a liveness file made by markAlive.
func markGone(f *flock.File) error {
	if f == nil {
		return nil
	}
	err := os.Remove(f.Path())
	if errors.Is(err, os.ErrNotExist) {
		err = nil // a contender found it unlocked during a suspension and removed it
	}
	return errors.Join(err, f.Close())
}

// holderDead reports whether the instance named id is known to be gone: its
// liveness file is missing or unlocked. It removes a stale file it finds.
// Where the OS cannot tell (no flock, a malformed id, an I/O error), the
// answer is false and the caller waits for expiry.
func holderDead(dir, id string) bool {
	if !flock.Supported {
		return false
	}
	h, err := parseHolder(id)
	if err != nil {
		return false
	}
	path := livenessPath(dir, h)
	f, err := flock.OpenExisting(path)
	if errors.Is(err, os.ErrNotExist) {
		return true // removed after its owner died or closed
	}
	if err != nil {
		return false
	}
	defer f.Close()
	if ok, err := f.TryLock(); err != nil || !ok {
		return false
	}
	// Unlocked: its owner is gone, unless the file we opened was replaced
	// meanwhile (an instance that suspended and resumed makes a new one).
	if same, err := f.StillAt(); err != nil || !same {
		return false
	}
	os.Remove(path) // best effort: a later look finds it missing, which means the same
	return true
}
