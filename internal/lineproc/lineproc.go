// Package lineproc runs the helper programs of the cross-process tests as
// real OS processes and talks to them in JSON lines: each request is one
// JSON object on the helper's stdin, and the helper prints one JSON object
// per line on stdout, each naming the request it belongs to. A test drives
// several processes on one store step by step while they all stay alive, or
// sends requests to several at once and then reads the answers.
//
// Every line a helper prints carries the [Envelope] fields: the ID of the
// request it belongs to (0 for lines the helper prints on its own, such as
// one saying it is ready) and, for a line printed on the way rather than the
// final reply, an event name. The rest of the line is the protocol's own.
package lineproc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// MaxLine bounds one line either way. The largest lines are batches of
// to-device events and key responses, a few hundred KiB at most.
const MaxLine = 16 << 20

// Envelope is what every line a helper prints says about itself.
type Envelope struct {
	// ID is the request the line belongs to; 0 for lines not about a
	// request, BadRequestID for a request the helper could not read.
	ID int `json:"id"`
	// Event names a line printed on the way; empty for the final reply.
	Event string `json:"event,omitempty"`
}

// BadRequestID is the ID of the line a helper prints for an input line it
// cannot read as a request (see [Serve]). A client that reads one fails
// every wait from then on: the request it waits for may be the one lost.
const BadRequestID = -1

// A Request is a request line. Send numbers it with SetID before writing it.
type Request interface {
	SetID(id int)
}

// Proc is one running helper whose lines are replies of type R. Its
// methods are safe for concurrent use.
type Proc[R any] struct {
	// Pid is the process ID.
	Pid int

	cmd    *exec.Cmd      // constant
	stdin  io.WriteCloser // constant
	stderr *syncBuffer    // constant
	done   chan struct{}  // closed when stdout reached EOF

	mu     sync.Mutex
	lines  []line[R]     // guarded by mu: every line read so far
	broken string        // guarded by mu: the first line that was not a reply, or a bad-request report
	more   chan struct{} // guarded by mu: closed and replaced when a line arrives
	nextID int           // guarded by mu
	wmu    sync.Mutex    // serializes writes to stdin

	waitOnce sync.Once
	waitErr  error // set by waitOnce
}

// line is one line read, with its envelope.
type line[R any] struct {
	env   Envelope
	reply R
}

// Start runs bin with args. It returns once the process is started; wait
// for its first line (WaitEvent with ID 0) to know it is ready.
func Start[R any](bin string, args ...string) (*Proc[R], error) {
	p := &Proc[R]{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{}), more: make(chan struct{})}
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
	return p, nil
}

func (p *Proc[R]) read(out io.Reader) {
	defer close(p.done)
	s := bufio.NewScanner(out)
	s.Buffer(nil, MaxLine)
	for s.Scan() {
		var l line[R]
		errEnv := json.Unmarshal(s.Bytes(), &l.env)
		errReply := json.Unmarshal(s.Bytes(), &l.reply)
		p.mu.Lock()
		switch {
		case errEnv != nil || errReply != nil:
			p.breakWith(fmt.Sprintf("unreadable line %.200q", s.Text()))
		case l.env.ID == BadRequestID:
			p.breakWith(fmt.Sprintf("the helper could not read a request: %.200s", s.Text()))
		default:
			p.lines = append(p.lines, l)
		}
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
	}
	if err := s.Err(); err != nil {
		p.mu.Lock()
		p.breakWith("reading stdout: " + err.Error())
		p.mu.Unlock()
	}
}

// breakWith records the first reason the conversation cannot be trusted.
// Callers hold mu.
func (p *Proc[R]) breakWith(why string) {
	if p.broken == "" {
		p.broken = why
	}
}

// Send numbers req with a fresh ID, which it returns, and writes it without
// waiting for the reply.
func (p *Proc[R]) Send(req Request) (int, error) {
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.mu.Unlock()
	req.SetID(id)
	b, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	if len(b) >= MaxLine {
		return 0, fmt.Errorf("lineproc: request of %d bytes, the limit is %d", len(b), MaxLine)
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err = p.stdin.Write(append(b, '\n'))
	return id, err
}

// Call sends req and waits for its reply. A reply that reports a failure
// is returned as it is, not as an error: tests assert on it.
func (p *Proc[R]) Call(req Request, timeout time.Duration) (R, error) {
	id, err := p.Send(req)
	if err != nil {
		var zero R
		return zero, err
	}
	return p.Wait(id, timeout)
}

// Wait waits for the final reply to request id.
func (p *Proc[R]) Wait(id int, timeout time.Duration) (R, error) {
	return p.find(func(e Envelope) bool { return e.ID == id && e.Event == "" }, fmt.Sprintf("reply %d", id), timeout)
}

// WaitEvent waits for the line named event of request id.
func (p *Proc[R]) WaitEvent(id int, event string, timeout time.Duration) (R, error) {
	return p.find(func(e Envelope) bool { return e.ID == id && e.Event == event }, fmt.Sprintf("event %q of %d", event, id), timeout)
}

// find returns the first line read, now or later, whose envelope match
// accepts. The timeout only bounds a hung test; nothing is timed by it.
func (p *Proc[R]) find(match func(Envelope) bool, what string, timeout time.Duration) (R, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var zero R
	for {
		r, found, more, broken := p.scan(match)
		switch {
		case found:
			return r, nil
		case broken != "":
			return zero, fmt.Errorf("helper %d before %s: %s; stderr: %s", p.Pid, what, broken, p.Stderr())
		}
		select {
		case <-more:
		case <-p.done:
			// read appends its last line before closing done.
			if r, found, _, _ := p.scan(match); found {
				return r, nil
			}
			return zero, fmt.Errorf("helper %d exited before %s: %s", p.Pid, what, p.Stderr())
		case <-deadline.C:
			return zero, fmt.Errorf("helper %d: no %s within %v; stderr: %s", p.Pid, what, timeout, p.Stderr())
		}
	}
}

func (p *Proc[R]) scan(match func(Envelope) bool) (r R, found bool, more chan struct{}, broken string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if match(l.env) {
			return l.reply, true, nil, ""
		}
	}
	return r, false, p.more, p.broken
}

// Replies returns every line read so far, in order.
func (p *Proc[R]) Replies() []R {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := make([]R, len(p.lines))
	for i, l := range p.lines {
		rs[i] = l.reply
	}
	return rs
}

// Stderr returns what the process has written to stderr so far.
func (p *Proc[R]) Stderr() string { return p.stderr.String() }

// Kill sends SIGKILL and waits until the process has exited and all it
// printed has been read. It is idempotent.
func (p *Proc[R]) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.reap()
}

// Close ends the helper as a normal exit would: its stdin is closed, and it
// finishes and exits. If it does not exit within timeout it is killed. The
// error carries what it left on stderr.
func (p *Proc[R]) Close(timeout time.Duration) error {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("helper %d did not exit within %v: %s", p.Pid, timeout, p.Stderr())
	}
	if err := p.reap(); err != nil {
		return fmt.Errorf("helper %d: %v: %s", p.Pid, err, p.Stderr())
	}
	return nil
}

// reap waits for the process once its output has ended (exec.Cmd.Wait must
// not run before the pipe is read to the end).
func (p *Proc[R]) reap() error {
	p.waitOnce.Do(func() { p.waitErr = p.cmd.Wait() })
	return p.waitErr
}

// syncBuffer is a bytes.Buffer safe for the process's stderr copier and the
// test reading it at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
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

// Output prints a helper's lines: one JSON object per line, each written
// whole even when several goroutines print at once.
type Output struct {
	mu  sync.Mutex
	enc *json.Encoder // guarded by mu
}

// NewOutput prints to w (a helper's stdout).
func NewOutput(w io.Writer) *Output { return &Output{enc: json.NewEncoder(w)} }

// Print writes v as one line.
func (o *Output) Print(v any) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.enc.Encode(v)
}

// badRequest is the line Serve prints for an input line it cannot read.
type badRequest struct {
	Envelope
	Err string `json:"err"`
}

// Serve reads requests of type Req from in, one JSON line each, and calls
// handle with each in its own goroutine, so that a request that waits (for
// the lease, or for a later request) does not hold up the next. An input line
// that is not a Req is answered on out with a line of ID BadRequestID. Serve
// returns when in ends, with a function that waits for the handlers still
// running; the error is a failure to read in.
func Serve[Req any](in io.Reader, out *Output, handle func(Req)) (wait func(), err error) {
	var wg sync.WaitGroup
	s := bufio.NewScanner(in)
	s.Buffer(nil, MaxLine)
	for s.Scan() {
		var req Req
		if err := json.Unmarshal(s.Bytes(), &req); err != nil {
			if err := out.Print(badRequest{Envelope: Envelope{ID: BadRequestID}, Err: err.Error()}); err != nil {
				return wg.Wait, err
			}
			continue
		}
		wg.Go(func() { handle(req) })
	}
	return wg.Wait, s.Err()
}
