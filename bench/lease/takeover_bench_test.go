package lease_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/flock"
	"github.com/xolm/xolm/tests/xprocess/harness"
	"github.com/xolm/xolm/xprocess"
)

// BenchmarkTakeoverAfterSIGKILL kills a writer holding the lease (usually
// inside a transaction) while another process waits, and reports the time
// from the kill to the waiter's acquisition: p50 and worst over the rounds.
// The lease is the default 3 s, so anything near it means a takeover by
// expiry rather than by the OS reporting the holder dead.
func BenchmarkTakeoverAfterSIGKILL(b *testing.B) {
	if !flock.Supported {
		b.Skip("without flock a dead holder is only taken over at expiry")
	}
	const rounds = 10
	var takeovers []time.Duration
	for range b.N {
		path := dbPath(b)
		holder := start(b, path, "-mode", "writer", "-in-tx", "2ms")
		expect(b, holder, "acquired")
		for range rounds {
			next := start(b, path, "-mode", "writer", "-in-tx", "2ms")
			expect(b, next, "waiting")
			for !harness.WaiterRegistered(path) {
				time.Sleep(100 * time.Microsecond)
			}
			expect(b, holder, "committed")
			time.Sleep(time.Millisecond)
			holder.Kill()
			killed := time.Now()
			at, _ := strconv.ParseInt(expect(b, next, "acquired")[2], 10, 64)
			takeovers = append(takeovers, time.Unix(0, at).Sub(killed))
			holder = next
		}
		holder.Kill()
	}
	b.ReportMetric(ms(percentile(takeovers, 50)), "takeover-p50-ms")
	b.ReportMetric(ms(percentile(takeovers, 100)), "takeover-max-ms")
}

// BenchmarkRenewalWhileHolding holds the lease with the default duration and
// counts the renewal writes (changes of the row's expiry, seen from another
// connection) per second held.
func BenchmarkRenewalWhileHolding(b *testing.B) {
	ctx := context.Background()
	path := dbPath(b)
	db, watch := openDB(b, path), openDB(b, path)
	p, err := xprocess.New(db, xprocess.Options{Role: "app"})
	must(b, err)
	defer p.Close()
	hold := xprocess.DefaultDuration * 3 / 4
	var renewals int
	var held time.Duration
	for range b.N {
		l, err := p.Acquire(ctx)
		must(b, err)
		start := time.Now()
		last := expiresAt(b, watch)
		for time.Since(start) < hold {
			time.Sleep(5 * time.Millisecond)
			if e := expiresAt(b, watch); e != last {
				renewals++
				last = e
			}
		}
		held += time.Since(start)
		must(b, l.Release())
	}
	b.ReportMetric(float64(renewals)/held.Seconds(), "renewals/s")
}
