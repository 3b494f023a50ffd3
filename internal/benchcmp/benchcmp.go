// Package benchcmp runs the sides of a benchmark comparison interleaved, so
// that their ratio is measured in one run under the same load: on a busy
// machine, running one side and then the other compares two different
// machines.
package benchcmp

import (
	"context"
	"runtime/pprof"
	"testing"
	"time"
)

// Side is one operation of a comparison. Op runs it once and returns the time
// of its measured part (preparing its input is not measured).
type Side struct {
	Name string
	// Prepare, when set, runs before each block of the side, unmeasured, with
	// the number of operations the block will run (its measured ones and the
	// one that is not). A side makes its inputs there, so that its operations
	// run back to back, as a caller's would, rather than each after making
	// its input: that work leaves the processor's caches full of something
	// else and would be measured as part of the operation.
	Prepare func(b *testing.B, ops int)
	Op      func(b *testing.B) time.Duration
}

// Interleave runs blocks of every side in turn, each round starting with the
// next side so that no side always follows the same other one, reports each
// side's time per operation as "<name>-ns/op" and returns them in order.
//
// A block is one operation that is not measured followed by block measured
// ones. The first operation after another side's block finds the
// processor's caches full of that side's work; measured, it made the order
// of the sides part of the result (a raw SQLite commit measured 10% slower
// after a block of Megolm decryptions than after another raw commit).
//
// A side's operations run with the profiler label side=<name> (its Prepare
// without): go tool pprof -tagfocus side=<name> shows one side's profile.
func Interleave(b *testing.B, block int, sides ...Side) []float64 {
	total := make([]time.Duration, len(sides))
	rounds := 0
	for b.Loop() {
		for k := range sides {
			i := (rounds + k) % len(sides)
			s := sides[i]
			if s.Prepare != nil {
				s.Prepare(b, block+1)
			}
			pprof.Do(context.Background(), pprof.Labels("side", s.Name), func(context.Context) {
				s.Op(b) // not measured
				for range block {
					total[i] += s.Op(b)
				}
			})
		}
		rounds++
	}
	per := make([]float64, len(sides))
	for i, s := range sides {
		per[i] = float64(total[i].Nanoseconds()) / float64(rounds*block)
		b.ReportMetric(per[i], s.Name+"-ns/op")
	}
	return per
}

// Ahead is a queue of inputs made ahead of the operations that use them
// (see Side.Prepare).
type Ahead[T any] struct {
	queue []T
}

// Put appends an input.
func (a *Ahead[T]) Put(v T) { a.queue = append(a.queue, v) }

// PutBatches appends items cut into inputs of n each.
func PutBatches[E any](a *Ahead[[]E], items []E, n int) {
	for len(items) >= n && n > 0 {
		a.Put(items[:n:n])
		items = items[n:]
	}
}

// Fill appends n inputs made by newInput.
func (a *Ahead[T]) Fill(n int, newInput func() T) {
	for range n {
		a.queue = append(a.queue, newInput())
	}
}

// Take returns the oldest input made and not yet taken; the test fails when
// there is none (a side took more than its Prepare made).
func (a *Ahead[T]) Take(b *testing.B) T {
	if len(a.queue) == 0 {
		b.Fatal("benchcmp: no input made ahead")
	}
	v := a.queue[0]
	var zero T
	a.queue[0] = zero
	a.queue = a.queue[1:]
	return v
}

// Timed measures f.
func Timed(f func()) time.Duration {
	t0 := time.Now()
	f()
	return time.Since(t0)
}
