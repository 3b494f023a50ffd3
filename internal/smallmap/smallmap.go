// Package smallmap provides a map that keeps its first entry in place. Most
// protocol steps touch one sender, one device and one session, and a Go map
// costs allocations and a group of slots before it holds anything; a Map
// allocates only when it holds a second key.
package smallmap

import "iter"

// Map is a map from K to V whose zero value is empty and ready to use. It is
// not safe for concurrent use.
type Map[K comparable, V any] struct {
	key  K
	val  V
	has  bool    // key and val hold an entry
	rest map[K]V // every other entry; never holds key while has is set
}

// Get returns the value for k and whether there is one.
func (m *Map[K, V]) Get(k K) (V, bool) {
	if m.has && m.key == k {
		return m.val, true
	}
	v, ok := m.rest[k]
	return v, ok
}

// Set sets the value for k.
func (m *Map[K, V]) Set(k K, v V) {
	if m.has && m.key == k {
		m.val = v
		return
	}
	if _, inRest := m.rest[k]; inRest || m.has {
		if m.rest == nil {
			m.rest = make(map[K]V)
		}
		m.rest[k] = v
		return
	}
	m.key, m.val, m.has = k, v, true
}

// Delete removes k's entry, if any.
func (m *Map[K, V]) Delete(k K) {
	if m.has && m.key == k {
		m.dropFirst()
		return
	}
	delete(m.rest, k)
}

// Len returns the number of entries.
func (m *Map[K, V]) Len() int {
	n := len(m.rest)
	if m.has {
		n++
	}
	return n
}

// Clear removes every entry, keeping no reference to any of them.
func (m *Map[K, V]) Clear() {
	m.dropFirst()
	clear(m.rest)
}

func (m *Map[K, V]) dropFirst() {
	var zk K
	var zv V
	m.key, m.val, m.has = zk, zv, false
}

// All yields every entry, in no particular order. The map must not be
// changed during the iteration.
func (m *Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if m.has && !yield(m.key, m.val) {
			return
		}
		for k, v := range m.rest {
			if !yield(k, v) {
				return
			}
		}
	}
}
