package benchcmp

import (
	"testing"
	"time"
)

// Every block of a side is prepared for its block+1 operations, starts with
// one that is not measured, and the time per operation counts the measured
// ones alone.
func TestInterleaveBlocks(t *testing.T) {
	const block = 3
	type count struct{ prepared, ops int }
	var counts [2]count
	var per []float64
	side := func(i int, d time.Duration) Side {
		var in Ahead[time.Duration]
		return Side{Name: "s",
			Prepare: func(b *testing.B, ops int) {
				counts[i].prepared += ops
				in.Fill(ops, func() time.Duration { return d })
			},
			Op: func(b *testing.B) time.Duration {
				counts[i].ops++
				d := in.Take(b)
				if counts[i].ops%(block+1) == 1 {
					return time.Hour // the unmeasured operation: must not count
				}
				return d
			}}
	}
	testing.Benchmark(func(b *testing.B) {
		counts = [2]count{}
		per = Interleave(b, block, side(0, time.Millisecond), side(1, 2*time.Millisecond))
	})
	for i, c := range counts {
		if c.ops == 0 || c.ops%(block+1) != 0 || c.prepared != c.ops {
			t.Errorf("side %d: %d operations, %d inputs prepared", i, c.ops, c.prepared)
		}
	}
	if per[0] != float64(time.Millisecond) || per[1] != float64(2*time.Millisecond) {
		t.Errorf("per operation %v", per)
	}
}
