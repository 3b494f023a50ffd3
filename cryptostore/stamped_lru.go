package cryptostore

import (
	lru "github.com/hashicorp/golang-lru/v2"
)

// stampedLRU is one bounded table of the store's cache. Every entry carries the
// lease generation under which it was loaded, and an entry whose stamp differs
// from the generation asked for is never returned (DESIGN.md invariant 1).
// It is only used through [cache], which owns the current generation.
type stampedLRU[K comparable, V any] struct {
	lru *lru.Cache[K, stamped[V]] // safe for concurrent use on its own
}

type stamped[V any] struct {
	gen uint64
	v   V
}

func newStampedLRU[K comparable, V any](size int) stampedLRU[K, V] {
	l, err := lru.New[K, stamped[V]](size)
	if err != nil {
		panic("cryptostore: internal error: " + err.Error()) // only for size <= 0
	}
	return stampedLRU[K, V]{lru: l}
}

// get returns the entry for k if it was loaded under generation gen.
func (t stampedLRU[K, V]) get(k K, gen uint64) (V, bool) {
	e, ok := t.lru.Get(k)
	if !ok || e.gen != gen {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (t stampedLRU[K, V]) put(k K, v V, gen uint64) { t.lru.Add(k, stamped[V]{gen: gen, v: v}) }

func (t stampedLRU[K, V]) remove(k K) { t.lru.Remove(k) }

func (t stampedLRU[K, V]) purge() { t.lru.Purge() }

func (t stampedLRU[K, V]) len() int { return t.lru.Len() }
