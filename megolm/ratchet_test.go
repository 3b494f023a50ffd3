package megolm

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// readVectors reads a testdata file of "name: value" lines; lines starting
// with # are provenance comments.
func readVectors(t testing.TB, name string) (keys []string, values map[string]string) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	values = map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s: malformed line %q", name, line)
		}
		keys = append(keys, k)
		values[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return keys, values
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testRatchet returns a ratchet at counter whose data is derived from seed.
func testRatchet(seed uint64, counter uint32) ratchet {
	var r ratchet
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	rng.Read(r.data[:])
	r.counter = counter
	return r
}

// TestRatchetLibolmVectors checks the ratchet against libolm 3.2.14's
// tests/test_megolm.cpp ("Megolm::advance").
func TestRatchetLibolmVectors(t *testing.T) {
	keys, v := readVectors(t, "ratchet_vectors.txt")
	var r ratchet
	copy(r.data[:], mustHex(t, v["initial"]))
	if len(keys) != 4 {
		t.Fatalf("want 4 vectors, got %d", len(keys))
	}

	// A single advance gives the first vector, as does advanceTo(1).
	one := r
	one.advance()
	want1 := mustHex(t, v["counter 0x00000001"])
	if one.counter != 1 || !bytes.Equal(one.data[:], want1) {
		t.Fatalf("advance: got %d %x", one.counter, one.data)
	}

	for _, k := range keys[1:] {
		target, err := strconv.ParseUint(strings.TrimPrefix(k, "counter 0x"), 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		r.advanceTo(uint32(target))
		if r.counter != uint32(target) {
			t.Fatalf("%s: counter is %#x", k, r.counter)
		}
		if want := mustHex(t, v[k]); !bytes.Equal(r.data[:], want) {
			t.Fatalf("%s:\n got %x\nwant %x", k, r.data, want)
		}
	}
}

// TestRatchetWraparound is libolm's "Megolm::advance wraparound": from
// 0xffffffff to 0x1000000 is two steps of R0, as is 0 to 0x2000000.
func TestRatchetWraparound(t *testing.T) {
	var data [ratchetSize]byte
	copy(data[:], bytes.Repeat([]byte("0123456789ABCDEF"), 8))
	a, b := newRatchet(&data, 0xffffffff), newRatchet(&data, 0)
	a.advanceTo(0x1000000)
	b.advanceTo(0x2000000)
	if a.counter != 0x1000000 || b.counter != 0x2000000 {
		t.Fatalf("counters %#x %#x", a.counter, b.counter)
	}
	if a.data != b.data {
		t.Fatal("ratchets differ")
	}
}

// TestRatchetOverflow checks the u32 wrap at the edges: advanceTo(0) from
// 0xffffffff is one advance, and going from 1 to 0x80000000 and then on to 0
// equals going from 1 to 0 directly (all the way round).
func TestRatchetOverflow(t *testing.T) {
	a, b := testRatchet(2, 0xffffffff), testRatchet(2, 0xffffffff)
	a.advanceTo(0)
	b.advance()
	if a.counter != 0 || b.counter != 0 || a.data != b.data {
		t.Fatalf("overflow by one: %#x %#x, equal %v", a.counter, b.counter, a.data == b.data)
	}

	a, b = testRatchet(3, 1), testRatchet(3, 1)
	a.advanceTo(0x80000000)
	a.advanceTo(0)
	b.advanceTo(0)
	if a.counter != 0 || a.data != b.data {
		t.Fatal("going round in two jumps differs from one jump")
	}
}

// TestRatchetAdvanceToMatchesAdvance compares advanceTo(c+n) with n single
// advances, from starting points just below every part boundary and the u32
// wrap, and from random ones.
func TestRatchetAdvanceToMatchesAdvance(t *testing.T) {
	starts := []uint32{0, 1, 0xf0, 0xff, 0xfff0, 0xffff, 0xfffff0, 0xffffff, 0x00ffff80,
		0x01fffffe, 0x7fffffff, 0xfefffff0, 0xfffffe00, 0xffffff00, 0xfffffff0, 0xffffffff}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 24 {
		starts = append(starts, rng.Uint32())
	}
	for i, start := range starts {
		base := testRatchet(uint64(i), start)
		stepped := base
		n := 300 + rng.IntN(300)
		for k := 1; k <= n; k++ {
			stepped.advance()
			if k%37 != 0 && k != n {
				continue
			}
			jumped := base
			jumped.advanceTo(start + uint32(k))
			if jumped.counter != stepped.counter || jumped.data != stepped.data {
				t.Fatalf("start %#x: advanceTo(+%d) differs from %d advances", start, k, k)
			}
		}
	}
}

// TestRatchetAdvanceToComposes checks that one long jump equals two shorter
// ones along the same way (modulo 2^32), for random pairs of any distance.
func TestRatchetAdvanceToComposes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		start := rng.Uint32()
		far := rng.Uint32()
		mid := start + uint32(rng.Uint64N(uint64(far-start)+1)) // on the way from start to far
		if i%4 == 0 {
			far = start + uint32(rng.IntN(1<<17)) // some short jumps across 2^8 and 2^16
			mid = start + (far-start)/2
		}
		direct, twoStep := testRatchet(uint64(i), start), testRatchet(uint64(i), start)
		direct.advanceTo(far)
		twoStep.advanceTo(mid)
		twoStep.advanceTo(far)
		if direct.counter != far || twoStep.counter != far || direct.data != twoStep.data {
			t.Fatalf("start %#x mid %#x far %#x: jumps disagree", start, mid, far)
		}
	}
}

// TestRatchetAdvanceToBound checks the work limit: no jump computes more than
// maxAdvanceHMACs HMACs, including the worst cases, and a jump to the current
// counter computes none.
func TestRatchetAdvanceToBound(t *testing.T) {
	cases := [][2]uint32{
		{0, 0xffffffff}, {1, 0}, {0xffffffff, 0xfffffffe}, {0x00ffffff, 0x00fefefe},
		{0x01000000, 0x00ffffff}, {0x80000000, 0x7fffffff}, {0, 0xfefefefe},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 400 {
		cases = append(cases, [2]uint32{rng.Uint32(), rng.Uint32()})
	}
	worst := 0
	for _, c := range cases {
		r := testRatchet(0, c[0])
		n := r.advanceTo(c[1])
		if n > maxAdvanceHMACs {
			t.Fatalf("%#x -> %#x: %d HMACs exceeds %d", c[0], c[1], n, maxAdvanceHMACs)
		}
		worst = max(worst, n)
	}
	if worst < 1000 {
		t.Errorf("worst case found is %d HMACs; the cases should reach near %d", worst, maxAdvanceHMACs)
	}
	r := testRatchet(0, 12345)
	before := r.data
	if n := r.advanceTo(12345); n != 0 || r.data != before {
		t.Fatalf("advanceTo(current) computed %d HMACs", n)
	}
}

// TestRehash checks the ratchet's step function against crypto/hmac.
func TestRehash(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	for j := range 4 {
		m := hmac.New(sha256.New, key)
		m.Write([]byte{byte(j)})
		want := m.Sum(nil)
		got := make([]byte, 32)
		rehash(got, key, j)
		if !bytes.Equal(got, want) {
			t.Fatalf("H_%d differs", j)
		}
		inPlace := bytes.Clone(key)
		rehash(inPlace, inPlace, j)
		if !bytes.Equal(inPlace, want) {
			t.Fatalf("H_%d in place differs", j)
		}
	}
}

func TestRatchetEqual(t *testing.T) {
	a, b := testRatchet(7, 9), testRatchet(7, 9)
	if !a.equal(&b) {
		t.Fatal("equal ratchets compare unequal")
	}
	b.counter++
	if a.equal(&b) {
		t.Fatal("different counters compare equal")
	}
	b = a
	b.data[127] ^= 1
	if a.equal(&b) {
		t.Fatal("different data compare equal")
	}
}

// BenchmarkAdvanceTo1M jumps the ratchet a million indices ahead.
func BenchmarkAdvanceTo1M(b *testing.B) {
	base := testRatchet(1, 0)
	b.ReportAllocs()
	for b.Loop() {
		r := base
		r.advanceTo(1_000_000)
	}
}

// BenchmarkAdvanceTo1MFloor computes only the HMACs that jump takes, with
// crypto/hmac, and none of the bookkeeping.
func BenchmarkAdvanceTo1MFloor(b *testing.B) {
	probe := testRatchet(1, 0)
	n := probe.advanceTo(1_000_000)
	key := make([]byte, 32)
	b.ReportAllocs()
	b.ReportMetric(float64(n), "HMACs/op")
	for b.Loop() {
		for range n {
			m := hmac.New(sha256.New, key)
			m.Write([]byte{1})
			m.Sum(key[:0])
		}
	}
}
