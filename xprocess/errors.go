package xprocess

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrLeaseLost means the lease row no longer names this process and
	// generation, or its expiry passed unrenewed: another process may have
	// moved the state on. The transaction must roll back and every in-memory
	// copy of stored state must be dropped (invariant 3).
	ErrLeaseLost = errors.New("xprocess: lease lost")

	// ErrLeaseHeld is matched by [*LeaseExistsError]: another process holds
	// the lease, or has the next turn.
	ErrLeaseHeld = errors.New("xprocess: lease held by another process")

	// ErrLeaseNotHeld is returned by Fence on a Lease that was released.
	ErrLeaseNotHeld = errors.New("xprocess: lease not held")

	// ErrSuspended is returned while the process is Suspended: by Enter for
	// every operation, by Acquire once suspension has released the lease, and
	// by an Acquire that was waiting when suspension began.
	ErrSuspended = errors.New("xprocess: process is suspended")

	// ErrBackground is returned by Enter for deferrable work while the
	// process is in the Background phase.
	ErrBackground = errors.New("xprocess: deferrable work refused in background")

	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("xprocess: process is closed")
)

// LeaseExistsError is returned by TryAcquire when another process holds the
// lease, or when the lease is free but another waiter has the next turn. It
// matches [ErrLeaseHeld] with errors.Is.
type LeaseExistsError struct {
	// Holder is the holder (or waiting process) in the way, in Holder.String
	// form; empty when this process released the lease last and other
	// processes are waiting for their turn.
	Holder string
	// ExpiresAt is when its claim runs out unless renewed.
	ExpiresAt time.Time
}

func (e *LeaseExistsError) Error() string {
	return fmt.Sprintf("xprocess: lease held by %s until %s", e.Holder, e.ExpiresAt.Format(time.RFC3339Nano))
}

// Is reports whether target is ErrLeaseHeld.
func (e *LeaseExistsError) Is(target error) bool { return target == ErrLeaseHeld }
