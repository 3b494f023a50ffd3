package lineproc

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
)

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
