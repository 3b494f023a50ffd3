package store_test

import (
	"testing"
	"time"
)

// A benchCase is one operation measured against a base operation.
type benchCase struct {
	name    string
	op      func(b *testing.B)
	metrics map[string]float64 // reported as they are, beside the timings
}

// block is how many operations of one side run between switches: enough to
// amortize a switch's cost (the Synced/Normal pragma, a clock read), few
// enough that both sides see the same load.
const block = 8

// paired runs each case as a sub-benchmark that alternates blocks of the
// case's operation with blocks of base's, timing each side. It reports ns/op
// for the case alone, base's ns/op over the same span as "<baseName>-ns/op",
// and their ratio as "x-<baseName>". Alternating keeps the ratio honest on a
// busy machine, where two benchmarks run one after the other may see
// different loads.
func paired(b *testing.B, baseName string, base func(b *testing.B), cases ...benchCase) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var baseTime, caseTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				for range block {
					base(b)
				}
				t1 := time.Now()
				for range block {
					c.op(b)
				}
				baseTime += t1.Sub(t0)
				caseTime += time.Since(t1)
			}
			ops := float64(b.N * block)
			b.ReportMetric(float64(caseTime.Nanoseconds())/ops, "ns/op")
			b.ReportMetric(float64(baseTime.Nanoseconds())/ops, baseName+"-ns/op")
			b.ReportMetric(float64(caseTime)/float64(baseTime), "x-"+baseName)
			for unit, v := range c.metrics {
				b.ReportMetric(v, unit)
			}
		})
	}
}
