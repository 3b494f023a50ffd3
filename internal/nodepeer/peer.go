package nodepeer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	// callTimeout bounds the wait for one reply. It is generous: the slowest
	// calls (a key export with many PBKDF2 rounds) take seconds, and a peer
	// that is stuck must fail the test rather than hang it.
	callTimeout = 60 * time.Second
	// stopTimeout bounds the wait for a peer to exit once its stdin closes.
	stopTimeout = 5 * time.Second
	// stderrTail is how much of a peer's stderr is kept for error messages.
	stderrTail = 16 << 10
)

// RemoteError is a failure the peer reported: an exception from its library
// (libolm's messages read like "OLM.BAD_MESSAGE_MAC") or a rejected request.
type RemoteError struct {
	Method  string // the request's method
	Message string // the exception's message
	Code    string // a machine-readable code, when the peer gave one
}

func (e *RemoteError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("nodepeer: %s: %s (%s)", e.Method, e.Message, e.Code)
	}
	return fmt.Sprintf("nodepeer: %s: %s", e.Method, e.Message)
}

// Peer is one running peer script. Its methods may be called from several
// goroutines; calls are sent one at a time.
type Peer struct {
	t       testing.TB    // constant
	script  string        // constant
	cmd     *exec.Cmd     // constant
	stderr  *tail         // has its own lock
	replies chan []byte   // reply lines; closed once the process has exited
	exitErr error         // set before replies is closed
	timeout time.Duration // constant after Start; tests shorten it

	mu     sync.Mutex
	stdin  io.WriteCloser // guarded by mu
	nextID int64          // guarded by mu
	broken error          // guarded by mu; once set, every call fails with it
}

// Start runs node on script, a file in tests/node, and waits until the script
// answers. The process is killed when the test ends; if the test failed, what
// it wrote to stderr is logged.
func Start(t testing.TB, script string) *Peer {
	t.Helper()
	dir := Require(t)
	p, err := launch(t, dir, script)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch starts script in dir, registers its cleanup, and pings it.
func launch(t testing.TB, dir, script string) (*Peer, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("nodepeer: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, script)); err != nil {
		return nil, fmt.Errorf("nodepeer: %w", err)
	}
	p := &Peer{
		t:       t,
		script:  script,
		cmd:     exec.Command(node, script),
		stderr:  &tail{max: stderrTail},
		replies: make(chan []byte, 1),
		timeout: callTimeout,
	}
	p.cmd.Dir = dir
	p.cmd.Stderr = p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("nodepeer: %w", err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("nodepeer: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("nodepeer: start %s: %w", script, err)
	}
	go p.read(stdout)
	t.Cleanup(p.stop)
	if err := p.Call("rpc.ping", nil, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// read forwards reply lines from stdout until it closes, then reaps the
// process. Lines that are not JSON objects are library output that escaped to
// stdout; they join stderr so that they show up in error messages.
func (p *Peer) read(stdout io.Reader) {
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if json.Valid(line) && line[0] == '{' {
				p.replies <- line
			} else {
				p.stderr.Write(append([]byte("stdout: "), line...))
			}
		}
		if err != nil {
			break
		}
	}
	p.exitErr = p.cmd.Wait()
	close(p.replies)
}

// stop closes stdin, gives the script a moment to exit, then kills it. It
// drains replies nobody asked for, so that the reader can reach the exit.
func (p *Peer) stop() {
	p.mu.Lock()
	p.stdin.Close()
	p.mu.Unlock()
	deadline := time.After(stopTimeout)
	for done := false; !done; {
		select {
		case _, ok := <-p.replies:
			done = !ok
		case <-deadline:
			p.cmd.Process.Kill()
		}
	}
	if p.t.Failed() {
		p.t.Logf("nodepeer: %s stderr:\n%s", p.script, p.stderr.String())
	}
}

type reply struct {
	ID    *int64          `json:"id"`
	OK    json.RawMessage `json:"ok"`
	Error *string         `json:"error"`
	Code  string          `json:"code"`
}

// Call sends method with params (marshalled as JSON; nil sends none) and
// unmarshals the reply's result into result unless result is nil. A failure
// the peer reports is a *RemoteError. A peer that exits, breaks the protocol
// or does not answer within a minute fails this and every later call, with
// its stderr in the error.
func (p *Peer) Call(method string, params, result any) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return p.broken
	}
	p.nextID++
	id := p.nextID
	request := struct {
		ID     int64  `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params,omitempty"`
	}{id, method, params}
	line, err := json.Marshal(request)
	if err != nil {
		return fmt.Errorf("nodepeer: %s: encode params: %w", method, err)
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return p.breakLocked(method, fmt.Errorf("write request: %w", err))
	}

	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	var raw []byte
	select {
	case l, ok := <-p.replies:
		if !ok {
			return p.breakLocked(method, fmt.Errorf("peer exited (%v)", p.exitErr))
		}
		raw = l
	case <-timer.C:
		p.cmd.Process.Kill()
		return p.breakLocked(method, fmt.Errorf("no reply within %v", p.timeout))
	}

	var r reply
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == nil || *r.ID != id {
		return p.breakLocked(method, fmt.Errorf("reply out of protocol: %.200s", raw))
	}
	if r.Error != nil {
		return &RemoteError{Method: method, Message: *r.Error, Code: r.Code}
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(r.OK, result); err != nil {
		return fmt.Errorf("nodepeer: %s: decode result %.200s: %w", method, r.OK, err)
	}
	return nil
}

// MustCall is Call that fails the test on error. Like t.Fatal, it must be
// called from the test's goroutine.
func (p *Peer) MustCall(method string, params, result any) {
	p.t.Helper()
	if err := p.Call(method, params, result); err != nil {
		p.t.Fatal(err)
	}
}

// breakLocked marks the peer unusable and returns the error every call will
// get from now on.
func (p *Peer) breakLocked(method string, cause error) error {
	p.broken = fmt.Errorf("nodepeer: %s %s: %w\nstderr:\n%s", p.script, method, cause, p.stderr.String())
	return p.broken
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int // constant

	mu  sync.Mutex
	buf []byte // guarded by mu
}

func (w *tail) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(b), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
