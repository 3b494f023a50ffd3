package cryptostore

import (
	"sync"
)

// DefaultCacheSize bounds each table of the cache (entries, not bytes). An
// Olm session is about 2 KiB decoded, an inbound group session under 1 KiB.
const DefaultCacheSize = 1024

// cacheToken is what a process last saw of the lease row: the generation
// (which changes with the holder) and the data stamp (which every write
// transaction bumps). The cache is valid only while both are unchanged.
type cacheToken struct {
	generation uint64
	dataStamp  uint64
}

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
	seen          cacheToken // the lease state the entries belong to
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
	}
}

// observe records the lease state seen at the start of a transaction and
// reports whether the cache had to be invalidated: on the first acquisition,
// and whenever the generation or data stamp differs from what this process
// last saw (another process has held the lease or written since).
func (c *cache) observe(t cacheToken) (invalidated bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid && c.seen == t {
		return false
	}
	if c.valid && c.insecureSkipInvalidation {
		return false
	}
	c.seen, c.valid = t, true
	c.invalidateLocked()
	return true
}

// ownWrite records the data stamp left by this process's own committed write,
// so that it does not invalidate the entries it has just published.
func (c *cache) ownWrite(t cacheToken) {
	c.mu.Lock()
	if !c.insecureSkipInvalidation {
		c.seen = t
	}
	c.mu.Unlock()
}

// begin returns the generation entries must carry and the publication
// sequence a reader must see unchanged to put what it reads.
func (c *cache) begin() (gen, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen.generation, c.writeSeq
}

// putIfCurrent runs put, which fills entries from a read snapshot, only if
// nothing was published or invalidated since the snapshot's seq.
func (c *cache) putIfCurrent(seq uint64, put func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writeSeq == seq && !c.disabled {
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
}
