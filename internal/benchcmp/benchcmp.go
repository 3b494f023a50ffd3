// Package benchcmp runs the sides of a benchmark comparison interleaved, so
// that their ratio is measured in one run under the same load: on a busy
// machine, running one side and then the other compares two different
// machines.
package benchcmp

import (
	"testing"
	"time"
)

// Side is one operation of a comparison. Op runs it once and returns the time
// of its measured part (preparing its input is not measured).
type Side struct {
	Name string
	Op   func(b *testing.B) time.Duration
}

// Interleave runs block operations of every side in turn, each round starting
// with the next side so that no side always follows the same other one,
// reports each side's time per operation as "<name>-ns/op" and returns them
// in order.
func Interleave(b *testing.B, block int, sides ...Side) []float64 {
	total := make([]time.Duration, len(sides))
	rounds := 0
	for b.Loop() {
		for k := range sides {
			i := (rounds + k) % len(sides)
			for range block {
				total[i] += sides[i].Op(b)
			}
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

// Timed measures f.
func Timed(f func()) time.Duration {
	t0 := time.Now()
	f()
	return time.Since(t0)
}
