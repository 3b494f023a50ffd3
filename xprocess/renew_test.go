package xprocess

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/xolm/xolm/internal/sqlitedb"
)

// In a synctest bubble time is virtual: a lease is held for a minute of it
// in milliseconds, and the number of renewal writes is exact.
func TestRenewalRateAndExpiryUnderVirtualTime(t *testing.T) {
	path := newEnv(t).path
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		db, err := sqlitedb.Open(ctx, path, sqlitedb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		p, err := New(db, Options{Role: "app"})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		renewals := 0
		p.renewed = func() { renewals++ }

		l, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const held = time.Minute
		time.Sleep(held)
		synctest.Wait()
		if l.Lost() {
			t.Fatal("a held lease was lost while renewals succeeded")
		}
		perSecond := float64(renewals) / held.Seconds()
		if want := float64(time.Second) / float64(DefaultDuration/3); perSecond != want {
			t.Fatalf("%d renewals in %v (%.2f/s), want %.2f/s", renewals, held, perSecond, want)
		}
		if perSecond > 4 {
			t.Fatalf("%.2f renewal writes per second, more than 4", perSecond)
		}

		// Renewal stops working (here, the database goes away) right after
		// the renewal due now: the lease is lost when that one runs out, and
		// not before.
		db.Close()
		time.Sleep(DefaultDuration - time.Millisecond)
		synctest.Wait()
		if l.Lost() {
			t.Fatal("the lease was lost before it expired")
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if !l.Lost() || !errors.Is(context.Cause(l.Context()), ErrLeaseLost) {
			t.Fatalf("after expiry: lost %v, cause %v", l.Lost(), context.Cause(l.Context()))
		}
	})
}
