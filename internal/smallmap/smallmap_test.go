package smallmap

import (
	"maps"
	"math/rand/v2"
	"testing"
)

// TestAgreesWithMap runs random operations on a Map and on a Go map side by
// side and compares them after each.
func TestAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var m Map[int, int]
		want := map[int]int{}
		keys := 1 + r.IntN(6) // few keys, so that operations meet
		for step := range 100 {
			k, v := r.IntN(keys), r.Int()
			switch op := r.IntN(10); {
			case op < 5:
				m.Set(k, v)
				want[k] = v
			case op < 8:
				m.Delete(k)
				delete(want, k)
			case op < 9:
				m.Clear()
				clear(want)
			}
			for k := range keys {
				got, ok := m.Get(k)
				w, wok := want[k]
				if got != w || ok != wok {
					t.Fatalf("round %d step %d: Get(%d) = %d, %v; want %d, %v", round, step, k, got, ok, w, wok)
				}
			}
			if m.Len() != len(want) {
				t.Fatalf("round %d step %d: Len = %d, want %d", round, step, m.Len(), len(want))
			}
			if all := maps.Collect(m.All()); !maps.Equal(all, want) {
				t.Fatalf("round %d step %d: All = %v, want %v", round, step, all, want)
			}
		}
	}
}

func TestOneKeyAllocatesNothing(t *testing.T) {
	var m Map[string, []int]
	v := []int{1}
	allocs := testing.AllocsPerRun(100, func() {
		m.Set("sender", v)
		if got, ok := m.Get("sender"); !ok || len(got) != 1 {
			t.Fatal("lost the entry")
		}
		m.Clear()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations for one key", allocs)
	}
}

func TestClearDropsReferences(t *testing.T) {
	var m Map[string, *int]
	m.Set("a", new(int))
	m.Set("b", new(int))
	m.Clear()
	if m.val != nil || m.key != "" || m.has || len(m.rest) != 0 {
		t.Fatalf("after Clear: %+v", m)
	}
}

func TestAllStopsEarly(t *testing.T) {
	var m Map[int, int]
	for k := range 5 {
		m.Set(k, k)
	}
	n := 0
	for range m.All() {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("yielded %d after break", n)
	}
}
