// Package xprocess is the cross-process lease that lets several OS processes
// of one app (the main app, a notification extension, a second window) share
// one SQLite store without ever writing from stale state.
//
// For most use cases, the store does all of this itself; an app only sets the
// phase with [Process.SetPhase].
//
// # The lease
//
// The lease is a row in the store's own database naming a holder, an expiry
// and a generation. Each process instance has its own [Holder] identity
// (role, pid and a random nonce), so two processes with the same role still
// exclude each other. [Process.Acquire] waits for the lease and
// [Process.TryAcquire] does not; a held lease is renewed in the background
// and given back by [Lease.Release]. The generation goes up whenever the
// lease changes holder.
//
// The generation is a fencing token: every write transaction calls
// [Lease.Fence], which checks inside the transaction that the row still
// names this holder and generation and fails with [ErrLeaseLost] otherwise.
// A process frozen past its expiry and taken over can therefore never write
// when it wakes. [Lease.Changed] tells the store when another process may
// have changed the data, so that it drops its caches before reading.
//
// # Waiting, fairness and crashes
//
// A waiter learns that the lease is free from a kernel lock on the side file
// <db path>.lease (the turnstile), which the holder keeps while it holds the
// lease, and which [Process.Write] keeps for the span of a transaction that
// takes the lease only for itself; a waiter blocks on it and retries the row
// when it is let go. It also polls, so a frozen holder cannot keep it waiting
// past the expiry.
//
// SQLite's busy handler is no queue: a process that keeps writing keeps the
// write lock, and one that waits sleeps. So fairness is arranged outside it.
// A waiting process registers with a shared lock on <db path>.waiters; a
// process that released the lease last and finds someone registered stands
// aside until that one has had its turn. Where file locks are unavailable, a
// refused waiter claims the next turn in the lease row instead, and nobody
// else may take the lease while that claim stands. Either way two processes
// that both want the lease alternate instead of one starving the other.
//
// Every instance keeps a lock on its own file under <db path>.holders; when a
// holder dies the kernel drops that lock, and the next waiter takes over at
// once instead of waiting out the lease.
//
// # Phases
//
// [Process.Enter] admits operations according to the app's [Phase]:
// Background refuses deferrable work and Suspended refuses everything.
// Suspending waits for admitted operations, releases the lease, drops every
// file lock and runs the [Process.OnSuspend] hooks, where the store
// checkpoints and closes its connections.
//
// # Concurrency
//
// A [Process] and its Leases are safe for concurrent use. Holds taken while
// the process already holds the lease share it, and the row is released when
// the last hold is. Do not call Acquire, TryAcquire, Release or Write inside
// a write transaction on the same database: they write to it themselves.
package xprocess
