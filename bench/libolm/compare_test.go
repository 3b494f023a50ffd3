//go:build libolm && cgo

package libolm

import (
	"encoding/base64"
	"slices"
	"testing"
	"time"
)

// plaintext is the 1 KiB payload of every benchmark.
var plaintext = make([]byte, 1024)

// pickleKey encrypts the pickles that carry libolm's state over to xolm.
var pickleKey = []byte("bench pickle key")

// b64 is the dialect of libolm's API and of Matrix: unpadded standard base64.
var b64 = base64.RawStdEncoding

// A side is one library's way of performing an operation over and over.
// reset, if not nil, restores the state op starts from; it runs untimed
// before the first op and then after every `every` ops (never again when
// every is 0), for operations that use up their state, such as decrypting a
// message, which works only once.
type side struct {
	op    func()
	reset func()
	every int
	done  int // ops since the last reset
}

func (s *side) start() {
	if s.reset != nil {
		s.reset()
	}
	s.done = 0
}

func (s *side) due() bool {
	return s.every > 0 && s.done == s.every
}

// bench runs s as a benchmark, with the timer stopped for resets.
func (s *side) bench(b *testing.B) {
	s.start()
	for b.Loop() {
		if s.due() {
			b.StopTimer()
			s.start()
			b.StartTimer()
		}
		s.op()
		s.done++
	}
}

// time returns the wall time that n ops take, resets excluded.
func (s *side) time(n int) time.Duration {
	var d time.Duration
	t := time.Now()
	for range n {
		if s.due() {
			d += time.Since(t)
			s.start()
			t = time.Now()
		}
		s.op()
		s.done++
	}
	return d + time.Since(t)
}

// Interleaving: the speedup is measured over rounds, each of which times a
// chunk of about chunkTime of libolm's ops and the same number of xolm's,
// back to back (which goes first alternates), for about ratioTime in all.
// The reported ratio is the median of the rounds' ratios, so that other
// work on the machine, which slows whatever runs while it runs, moves it
// little.
const (
	chunkTime = time.Millisecond
	ratioTime = time.Second
)

// compare runs one operation as two sub-benchmarks, libolm's and then xolm's,
// each from a side made for it, and reports on xolm's how many times faster
// it is: speedup-x, libolm's time over xolm's, measured by interleaving the
// two sides (with the timer stopped). A -bench pattern that selects only
// xolm's side reports no ratio.
func compare(b *testing.B, libolm, xolm func(tb testing.TB) *side) {
	ran := false
	b.Run("libolm", func(b *testing.B) {
		b.ReportAllocs()
		libolm(b).bench(b)
		ran = true
	})
	b.Run("xolm", func(b *testing.B) {
		b.ReportAllocs()
		xolm(b).bench(b)
		if !ran || b.N == 0 {
			return
		}
		perOp := b.Elapsed() / time.Duration(b.N)
		b.ReportMetric(speedup(libolm(b), xolm(b), perOp), "speedup-x")
	})
}

// speedup is the median over interleaved rounds of libolm's time over
// xolm's for the same number of ops; perOp is xolm's time for one op.
func speedup(libolm, xolm *side, perOp time.Duration) float64 {
	n := max(1, int(chunkTime/max(perOp, 1)))
	libolm.start()
	xolm.start()
	var ratios []float64
	for spent := time.Duration(0); spent < ratioTime; {
		var l, x time.Duration
		if len(ratios)%2 == 0 {
			l, x = libolm.time(n), xolm.time(n)
		} else {
			x, l = xolm.time(n), libolm.time(n)
		}
		ratios = append(ratios, float64(l)/float64(x))
		spent += l + x
	}
	slices.Sort(ratios)
	return ratios[len(ratios)/2]
}

// stream is deterministic randomness: the bytes it serves depend only on its
// tag and on how many it has served, so a libolm buffer filled from a fresh
// stream and an xolm Read from another hold the same bytes, however xolm
// splits its reads. Any 32 bytes are a valid Curve25519 or Ed25519 secret.
type stream struct {
	tag byte
	n   int
}

func (s *stream) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.n*73) ^ s.tag
		s.n++
	}
	return len(p), nil
}

// randomBytes returns the first n bytes of the stream with the given tag.
func randomBytes(tag byte, n int) []byte {
	p := make([]byte, n)
	(&stream{tag: tag}).Read(p)
	return p
}

// refill restores buf to the first bytes of the stream with the given tag:
// libolm wipes every random buffer it is given.
func refill(buf []byte, tag byte) {
	(&stream{tag: tag}).Read(buf)
}

// TestSideResets checks the bookkeeping that keeps resets out of the timings:
// a side with every = 3 is reset before its first op and after every third.
func TestSideResets(t *testing.T) {
	var ops, resets []int
	n := 0
	s := &side{every: 3, op: func() { n++; ops = append(ops, n) }}
	s.reset = func() { resets = append(resets, n) }
	s.start()
	s.time(7)
	if want := []int{0, 3, 6}; !slices.Equal(resets, want) {
		t.Fatalf("resets after ops %v, want %v", resets, want)
	}
	if len(ops) != 7 {
		t.Fatalf("%d ops ran, want 7", len(ops))
	}
}
