package storeproc

import (
	"fmt"
	"time"

	"github.com/xolm/xolm/internal/gobuild"
	"github.com/xolm/xolm/internal/lineproc"
)

// Build compiles the helper program into dir and returns the binary's path.
func Build(dir string) (string, error) {
	return gobuild.Binary(dir, "github.com/xolm/xolm/tests/storexp/helper", "storexp-helper")
}

// Config starts one helper process on a store.
type Config struct {
	DB   string   // the store file
	Key  [32]byte // the store key
	Role string   // the lease role: "app", "nse", …
	// SkipInvalidation opens the store with InsecureSkipCacheInvalidation.
	SkipInvalidation bool
	// Lease is the lease duration; the store's default if 0.
	Lease time.Duration
}

// Proc is one running helper: a lineproc.Proc whose replies are Reply
// lines. Its methods are safe for concurrent use.
type Proc struct {
	*lineproc.Proc[Reply]
	Holder string // the lease holder identity the helper reported
}

// Start runs the helper at bin and waits until its store is open.
func Start(bin string, cfg Config, timeout time.Duration) (*Proc, error) {
	args := []string{"-db", cfg.DB, "-key", fmt.Sprintf("%x", cfg.Key[:]), "-role", cfg.Role}
	if cfg.SkipInvalidation {
		args = append(args, "-insecure-skip-cache-invalidation")
	}
	if cfg.Lease > 0 {
		args = append(args, "-lease", cfg.Lease.String())
	}
	lp, err := lineproc.Start[Reply](bin, args...)
	if err != nil {
		return nil, err
	}
	ready, err := lp.WaitEvent(0, "ready", timeout)
	if err != nil {
		lp.Kill()
		return nil, err
	}
	return &Proc{Proc: lp, Holder: ready.Holder}, nil
}

// Send sends req with a fresh ID, which it returns, without waiting.
func (p *Proc) Send(req Request) (int, error) { return p.Proc.Send(&req) }

// Call sends req and waits for its reply. A reply reporting an error is
// returned as is, not as an error: tests assert on it.
func (p *Proc) Call(req Request, timeout time.Duration) (Reply, error) {
	return p.Proc.Call(&req, timeout)
}
