// Package harness builds and drives leaseproc processes for the
// cross-process lease tests and benchmarks: start one, send it lines, wait
// for the lines it prints, signal and kill it.
package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/xolm/xolm/internal/gobuild"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xolm/xolm/internal/flock"
)

// Build compiles leaseproc into dir and returns the binary's path.
func Build(dir string) (string, error) {
	return gobuild.Binary(dir, "github.com/xolm/xolm/tests/xprocess/leaseproc", "leaseproc")
}

// Setup creates the database at path with the tables leaseproc uses.
func Setup(bin, path string) error {
	out, err := exec.Command(bin, "-db", path, "-mode", "setup").CombinedOutput()
	if err != nil {
		return fmt.Errorf("leaseproc setup: %v\n%s", err, out)
	}
	return nil
}

// WaiterRegistered reports whether some process is registered as waiting
// for the lease on the database at path (it holds a shared lock on the
// waiters file); false where flock is unsupported.
func WaiterRegistered(path string) bool {
	f, err := flock.Open(path + ".waiters")
	if err != nil {
		return false
	}
	defer f.Close()
	ok, err := f.TryLock()
	return err == nil && !ok
}

// Proc is one running leaseproc. Its methods are safe for concurrent use.
type Proc struct {
	// Holder is the process's lease identity, from its first line.
	Holder string

	cmd    *exec.Cmd      // constant
	stdin  io.WriteCloser // constant
	stderr *lockedBuffer  // constant
	done   chan struct{}  // closed when stdout reached EOF

	mu     sync.Mutex
	lines  []string      // guarded by mu: every line printed so far
	more   chan struct{} // guarded by mu: closed and replaced when a line arrives
	cursor int           // guarded by mu: lines before it were consumed by Expect
}

// Start runs bin with args and waits for the holder line.
func Start(bin string, args ...string) (*Proc, error) {
	p := &Proc{cmd: exec.Command(bin, args...), stderr: &lockedBuffer{}, done: make(chan struct{}), more: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go p.read(out)
	f, err := p.Expect("holder", 30*time.Second)
	if err != nil {
		p.Kill()
		return nil, err
	}
	p.Holder = f[1]
	return p, nil
}

func (p *Proc) read(out io.Reader) {
	defer close(p.done)
	s := bufio.NewScanner(out)
	for s.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, s.Text())
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
	}
}

// Send writes one line to the process's stdin.
func (p *Proc) Send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// Expect waits for the next line starting with word, skipping others, and
// returns its fields. A line starting with "error", an exit or the timeout
// fail it; the timeout only bounds a hung test.
func (p *Proc) Expect(word string, timeout time.Duration) ([]string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		for p.cursor < len(p.lines) {
			line := p.lines[p.cursor]
			p.cursor++
			f := strings.Fields(line)
			if len(f) > 0 && f[0] == word {
				p.mu.Unlock()
				return f, nil
			}
			if len(f) > 0 && f[0] == "error" {
				p.mu.Unlock()
				return nil, fmt.Errorf("leaseproc: %s", line)
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			p.mu.Lock()
			left := p.cursor < len(p.lines)
			p.mu.Unlock()
			if !left {
				return nil, fmt.Errorf("leaseproc exited before printing %q: %s", word, p.stderr.String())
			}
		case <-deadline.C:
			return nil, fmt.Errorf("leaseproc: no %q line within %v", word, timeout)
		}
	}
}

// Lines returns every line printed so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL and waits for the process and its output to end.
func (p *Proc) Kill() error {
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.Wait()
	return nil
}

// Wait waits for the process to exit and its output to be read, and returns
// its exit error.
func (p *Proc) Wait() error {
	<-p.done
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) && p.stderr.String() != "" {
		err = fmt.Errorf("%w: %s", err, p.stderr.String())
	}
	return err
}

// lockedBuffer collects stderr, which exec writes from its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
