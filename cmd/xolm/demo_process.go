package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine"
)

// demoMaxLine bounds one line of the command protocol, either way. The
// largest are key responses and to-device batches of a few KiB.
const demoMaxLine = 4 << 20

// demoOpTimeout bounds one command, so that a stuck process ends the demo
// with an error instead of hanging it.
const demoOpTimeout = 30 * time.Second

// runDemoDevice is the hidden command "demo-device": one process of Alice's
// device in the demo. It opens the store named by -store with the key of the
// first command (never on the command line, where other users could read
// it), then runs one command per line of stdin and answers each with one line
// on stdout, until stdin ends.
func runDemoDevice(ctx context.Context, stdout io.Writer, args []string) error {
	fs := flag.NewFlagSet("demo-device", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", "app", "lease role: app or nse")
	path := fs.String("store", "", "store file")
	user := fs.String("user", demoAlice, "user ID")
	device := fs.String("device", demoAliceDevice, "device ID")
	skip := fs.Bool("insecure-skip-cache-invalidation", false, "keep cached state across lease generations")
	if err := fs.Parse(args); err != nil || *path == "" || fs.NArg() != 0 {
		return errUsage
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), demoMaxLine)
	out := json.NewEncoder(stdout)
	var open demoCommand
	if !in.Scan() {
		return fmt.Errorf("no %s command: %v", opOpen, in.Err())
	}
	var key [32]byte
	if err := json.Unmarshal(in.Bytes(), &open); err != nil || open.Op != opOpen {
		return fmt.Errorf("the first command must be %s", opOpen)
	}
	k, err := hex.DecodeString(open.Key)
	if err != nil || len(k) != len(key) {
		return fmt.Errorf("%s: the key must be %d hex digits", opOpen, 2*len(key))
	}
	copy(key[:], k)
	clear(k)
	store, err := cryptostore.Open(ctx, *path, cryptostore.Options{Key: &key, Role: *role,
		InsecureSkipCacheInvalidation: *skip})
	clear(key[:])
	if err != nil {
		return err
	}
	defer store.Close()
	m, err := machine.Open(ctx, store, *user, *device, machine.Options{})
	if err != nil {
		return err
	}
	if err := out.Encode(demoReply{}); err != nil {
		return err
	}
	d := &deviceMachine{m: m}
	for in.Scan() {
		var c demoCommand
		var r demoReply
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			r.Err = err.Error()
		} else {
			opCtx, cancel := context.WithTimeout(ctx, demoOpTimeout)
			if r, err = d.do(opCtx, c); err != nil {
				r = demoReply{Err: err.Error()}
			}
			cancel()
		}
		if err := out.Encode(r); err != nil {
			return err
		}
	}
	return errors.Join(in.Err(), store.Close())
}

// deviceProcess is the demo's handle on one demo-device process.
type deviceProcess struct {
	role   string          // constant
	cmd    *exec.Cmd       // constant
	stdin  io.WriteCloser  // owned by the demo's goroutine
	lines  <-chan []byte   // stdout, one reply per line; closed at EOF
	stderr *tailBuffer     // constant
	exited <-chan struct{} // closed when the process has exited
}

var _ demoDevice = (*deviceProcess)(nil)

// startDeviceProcess starts bin as a demo-device process of role on the
// store at path, opened with key, and waits until it is ready.
func startDeviceProcess(ctx context.Context, bin, role, path string, key *[32]byte, insecure bool) (*deviceProcess, error) {
	args := []string{"demo-device", "-role", role, "-store", path}
	if insecure {
		args = append(args, "-insecure-skip-cache-invalidation")
	}
	cmd := exec.Command(bin, args...)
	p := &deviceProcess{role: role, cmd: cmd, stderr: &tailBuffer{max: 4 << 10}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the %s process: %w", role, err)
	}
	lines, exited := make(chan []byte), make(chan struct{})
	p.lines, p.exited = lines, exited
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), demoMaxLine)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(lines)
		cmd.Wait()
		close(exited)
	}()
	if _, err := p.do(ctx, demoCommand{Op: opOpen, Key: hex.EncodeToString(key[:])}); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// do sends one command and waits for its reply.
func (p *deviceProcess) do(ctx context.Context, c demoCommand) (demoReply, error) {
	line, err := json.Marshal(c)
	if err != nil {
		return demoReply{}, err
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return demoReply{}, p.failed(c.Op, err)
	}
	timer := time.NewTimer(demoOpTimeout)
	defer timer.Stop()
	var r demoReply
	select {
	case l, ok := <-p.lines:
		if !ok {
			return r, p.failed(c.Op, errors.New("the process exited"))
		}
		if err := json.Unmarshal(l, &r); err != nil {
			return r, p.failed(c.Op, err)
		}
	case <-timer.C:
		return r, p.failed(c.Op, errors.New("no reply in time"))
	case <-ctx.Done():
		return r, p.failed(c.Op, ctx.Err())
	}
	if r.Err != "" {
		return r, fmt.Errorf("%s: %s: %s", p.role, c.Op, r.Err)
	}
	return r, nil
}

func (p *deviceProcess) failed(op string, err error) error {
	if tail := strings.TrimSpace(p.stderr.String()); tail != "" {
		return fmt.Errorf("%s: %s: %w\n%s", p.role, op, err, tail)
	}
	return fmt.Errorf("%s: %s: %w", p.role, op, err)
}

// close ends the process: stdin is closed, which makes it close its store
// and exit; one that does not within demoOpTimeout is killed.
func (p *deviceProcess) close() error {
	p.stdin.Close()
	go func() {
		for range p.lines { // drain, so that the reader reaches EOF
		}
	}()
	select {
	case <-p.exited:
	case <-time.After(demoOpTimeout):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s: killed after not exiting", p.role)
	}
	if !p.cmd.ProcessState.Success() {
		return p.failed("exit", errors.New(p.cmd.ProcessState.String()))
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int // constant

	mu  sync.Mutex
	buf []byte // guarded by mu
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
