package storeproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/xolm/xolm/internal/gobuild"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
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

// Proc is one running helper. Its methods are safe for concurrent use.
type Proc struct {
	Holder string // the lease holder identity the helper reported
	Pid    int

	cmd    *exec.Cmd      // constant
	stdin  io.WriteCloser // constant
	stderr *syncBuffer    // constant
	done   chan struct{}  // closed when stdout reached EOF

	mu      sync.Mutex
	replies []Reply       // guarded by mu: every line read so far
	more    chan struct{} // guarded by mu: closed and replaced when a line arrives
	nextID  int           // guarded by mu
	wmu     sync.Mutex    // serializes writes to stdin

	waitOnce sync.Once
	waitErr  error // set by waitOnce
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
	p := &Proc{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{}), more: make(chan struct{})}
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
	p.Pid = p.cmd.Process.Pid
	go p.read(out)
	ready, err := p.WaitEvent(0, "ready", timeout)
	if err != nil {
		p.Kill()
		return nil, err
	}
	p.Holder = ready.Holder
	return p, nil
}

func (p *Proc) read(out io.Reader) {
	defer close(p.done)
	s := bufio.NewScanner(out)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		var r Reply
		if err := json.Unmarshal(s.Bytes(), &r); err != nil {
			r = Reply{ID: -1, Event: "garbled", Err: s.Text()}
		}
		p.mu.Lock()
		p.replies = append(p.replies, r)
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
	}
}

// Send sends req with a fresh ID, which it returns, without waiting.
func (p *Proc) Send(req Request) (int, error) {
	p.mu.Lock()
	p.nextID++
	req.ID = p.nextID
	p.mu.Unlock()
	line, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err = p.stdin.Write(append(line, '\n'))
	return req.ID, err
}

// Call sends req and waits for its reply. A reply reporting an error is
// returned as is, not as an error: tests assert on it.
func (p *Proc) Call(req Request, timeout time.Duration) (Reply, error) {
	id, err := p.Send(req)
	if err != nil {
		return Reply{}, err
	}
	return p.Wait(id, timeout)
}

// Wait waits for the reply to request id.
func (p *Proc) Wait(id int, timeout time.Duration) (Reply, error) {
	return p.find(func(r Reply) bool { return r.ID == id && r.Event == "" }, fmt.Sprintf("reply %d", id), timeout)
}

// WaitEvent waits for the event named event of request id.
func (p *Proc) WaitEvent(id int, event string, timeout time.Duration) (Reply, error) {
	return p.find(func(r Reply) bool { return r.ID == id && r.Event == event }, fmt.Sprintf("event %q of %d", event, id), timeout)
}

// find returns the first line read, now or later, that match accepts. The
// timeout only bounds a hung test; nothing is timed by it.
func (p *Proc) find(match func(Reply) bool, what string, timeout time.Duration) (Reply, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r, found, more := p.scan(match)
		if found {
			return r, nil
		}
		select {
		case <-more:
		case <-p.done:
			// read appends its last line before closing done.
			if r, found, _ := p.scan(match); found {
				return r, nil
			}
			return Reply{}, fmt.Errorf("helper %d exited before %s: %s", p.Pid, what, p.stderr.String())
		case <-deadline.C:
			return Reply{}, fmt.Errorf("helper %d: no %s within %v; stderr: %s", p.Pid, what, timeout, p.stderr.String())
		}
	}
}

func (p *Proc) scan(match func(Reply) bool) (r Reply, found bool, more chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.replies {
		if match(r) {
			return r, true, nil
		}
	}
	return Reply{}, false, p.more
}

// Replies returns every line read so far.
func (p *Proc) Replies() []Reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Reply(nil), p.replies...)
}

// Kill sends SIGKILL and waits until the process has exited and all it
// printed has been read. It is idempotent.
func (p *Proc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.reap()
}

// Close ends the helper as a normal exit would: its stdin is closed, and it
// closes its store and exits. If it does not exit within timeout it is
// killed. The error carries what it left on stderr.
func (p *Proc) Close(timeout time.Duration) error {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("helper %d did not exit within %v: %s", p.Pid, timeout, p.stderr.String())
	}
	if err := p.reap(); err != nil {
		return fmt.Errorf("helper %d: %v: %s", p.Pid, err, p.stderr.String())
	}
	return nil
}

// reap waits for the process once its output has ended (exec.Cmd.Wait must
// not run before the pipe is read to the end).
func (p *Proc) reap() error {
	p.waitOnce.Do(func() { p.waitErr = p.cmd.Wait() })
	return p.waitErr
}

// syncBuffer is a bytes.Buffer safe for the process's stderr copier and the
// test reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
