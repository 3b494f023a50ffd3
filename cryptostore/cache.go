package cryptostore

import (
	"sync"
)

// DefaultCacheSize bounds each table of the cache (entries, not bytes). An
// Olm session is about 2 KiB decoded, an inbound group session under 1 KiB.
const DefaultCacheSize = 1024

// cache is the store's only derived in-memory state, one per Store (and so,
// used as intended, one per store file per process). Every entry carries the
// generation it was loaded under, and Invalidate drops everything
// (DESIGN.md invariant 1). It hands out clones: callers change copies, and
// only a committed transaction publishes new values (invariant 5).
type cache struct {
	disabled bool // constant: no-cache mode, every read goes to SQLite
	// constant. Hazard, for demonstrations and tests only: never invalidate,
	// and keep stamping entries with the first generation seen, so stale
	// entries are returned — what a store without invariant 1 would do.
	insecureSkipInvalidation bool

	mu            sync.Mutex // guards the fields below
	generation    uint64     // the lease generation entries must carry
	valid         bool       // false until the first acquisition: it always invalidates
	invalidations uint64
	// writeSeq counts publications. A read transaction may put what it read
	// only if no publication happened since it began: otherwise its snapshot
	// may be older than the cache.
	writeSeq uint64

	account       stampedLRU[struct{}, *AccountRecord]
	olmSessions   stampedLRU[string, []*OlmSessionRecord] // by sender key, most recently used first
	groupSessions stampedLRU[groupKey, *InboundGroupSessionRecord]
	outbound      stampedLRU[string, *OutboundGroupSessionRecord] // by room
	// devices caches DeviceByCurve25519 by identity key; nil records that
	// no device has the key. Any device write empties it.
	devices stampedLRU[string, *Device]
}

type groupKey struct{ roomID, sessionID string }

func newCache(size int, disabled, insecureSkipInvalidation bool) *cache {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &cache{
		disabled:                 disabled,
		insecureSkipInvalidation: insecureSkipInvalidation,
		account:                  newStampedLRU[struct{}, *AccountRecord](1),
		olmSessions:              newStampedLRU[string, []*OlmSessionRecord](size),
		groupSessions:            newStampedLRU[groupKey, *InboundGroupSessionRecord](size),
		outbound:                 newStampedLRU[string, *OutboundGroupSessionRecord](size),
		devices:                  newStampedLRU[string, *Device](size),
	}
}

// observe records a lease acquisition. If the lease reports that state may
// have changed since this process last saw it (another process held it or
// wrote, or this is the first acquisition), every entry is dropped before
// anything is read (DESIGN.md invariant 2). It reports whether it invalidated.
func (c *cache) observe(generation uint64, changed bool) (invalidated bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && c.insecureSkipInvalidation {
		return false
	}
	if c.valid && !changed && c.generation == generation {
		return false
	}
	c.generation, c.valid = generation, true
	c.invalidateLocked()
	return true
}

// begin returns the generation entries must carry and the publication
// sequence, for a write transaction (which holds the lease and the writer,
// so nothing is published while it runs).
func (c *cache) begin() (gen, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation, c.writeSeq
}

// sequence returns the publication sequence. A read transaction samples it
// before the statement that fixes its snapshot.
func (c *cache) sequence() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeSeq
}

// noPuts is a sequence no cache reaches: a reader given it puts nothing.
const noPuts = ^uint64(0)

// observeView is observe for a read transaction whose snapshot was fixed
// after it sampled seq0 and saw the lease at generation. It returns the
// generation the reader's entries carry and the sequence its puts must find
// unchanged: noPuts if anything was published or invalidated since seq0,
// because the snapshot may then be older than the cache.
func (c *cache) observeView(seq0, generation uint64, changed bool) (gen, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stale := c.writeSeq != seq0
	switch {
	case c.valid && c.insecureSkipInvalidation:
		return c.generation, c.writeSeq
	case c.valid && !changed && c.generation == generation:
	default:
		c.generation, c.valid = generation, true
		c.invalidateLocked()
	}
	if stale {
		return generation, noPuts
	}
	return generation, c.writeSeq
}

// putIfCurrent runs put, which fills entries from a read snapshot, only if
// nothing was published or invalidated since the snapshot's seq and the
// cache is still at the snapshot's generation.
func (c *cache) putIfCurrent(seq, gen uint64, put func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writeSeq == seq && c.generation == gen && !c.disabled {
		put()
	}
}

// publish applies a committed transaction's changes. The store calls it
// after the commit, in commit order.
func (c *cache) publish(fns []func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeSeq++
	for _, f := range fns {
		f()
	}
}

// Invalidate drops every entry. It is the cache's only invalidation path.
func (c *cache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidateLocked()
}

func (c *cache) invalidateLocked() {
	c.invalidations++
	c.writeSeq++
	c.account.purge()
	c.olmSessions.purge()
	c.groupSessions.purge()
	c.outbound.purge()
	c.devices.purge()
}
