package libolmpickle

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestEncoderLayout(t *testing.T) {
	var e Encoder
	e.U32(0x01020304)
	e.U8(0xab)
	e.Bool(true)
	e.Bool(false)
	e.Bytes([]byte("xyz"))
	e.Bytes(nil)
	want := []byte{1, 2, 3, 4, 0xab, 1, 0, 'x', 'y', 'z'}
	if !bytes.Equal(e.Result(), want) {
		t.Fatalf("got %x, want %x", e.Result(), want)
	}
}

func TestEncoderDecoderRoundTrip(t *testing.T) {
	a32, a64, a128 := fill(32, 1), fill(64, 2), fill(128, 3)
	var e Encoder
	e.U32(math.MaxUint32)
	e.U32(0)
	e.U8(7)
	e.Bool(true)
	e.Bytes(a32)
	e.Bytes(a64)
	e.Bytes(a128)
	e.U32(3) // a count
	d := NewDecoder(e.Result())
	if d.U32("a") != math.MaxUint32 || d.U32("b") != 0 || d.U8("c") != 7 || !d.Bool("d") {
		t.Fatal("scalars differ")
	}
	if got := d.Array32("e"); !bytes.Equal(got[:], a32) {
		t.Fatal("Array32 differs")
	}
	if got := d.Array64("f"); !bytes.Equal(got[:], a64) {
		t.Fatal("Array64 differs")
	}
	if got := d.Array128("g"); !bytes.Equal(got[:], a128) {
		t.Fatal("Array128 differs")
	}
	if n := d.Count("h", 3); n != 3 {
		t.Fatalf("Count = %d", n)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

// TestDecoderBoolIsLenient follows libolm, which reads any non-zero byte as true.
func TestDecoderBoolIsLenient(t *testing.T) {
	d := NewDecoder([]byte{0, 1, 2, 0xff})
	if d.Bool("a") || !d.Bool("b") || !d.Bool("c") || !d.Bool("d") || d.Finish() != nil {
		t.Fatal("Bool does not read zero as false and non-zero as true")
	}
}

// readAll reads a fixed sequence of every kind of field, as an unpickler would.
func readAll(d *Decoder) {
	d.U32("version")
	d.U8("flag")
	d.Array32("key")
	d.Array64("signing key")
	d.Count("items", 10)
	d.Array128("ratchet")
	d.Bool("verified")
}

func TestDecoderTruncation(t *testing.T) {
	var e Encoder
	e.U32(1)
	e.U8(1)
	e.Bytes(fill(32, 4))
	e.Bytes(fill(64, 5))
	e.U32(2)
	e.Bytes(fill(128, 6))
	e.Bool(true)
	full := e.Result()
	d := NewDecoder(full)
	readAll(d)
	if err := d.Finish(); err != nil {
		t.Fatalf("full input: %v", err)
	}
	for n := range len(full) {
		d := NewDecoder(full[:n:n])
		readAll(d)
		err := d.Finish()
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

func TestDecoderErrorsStick(t *testing.T) {
	d := NewDecoder([]byte{0, 0, 0, 9, 0xaa, 0xbb})
	if d.U32("first") != 9 {
		t.Fatal("first read failed")
	}
	if a := d.Array32("key"); a != ([32]byte{}) {
		t.Fatal("a failed read returned data")
	}
	// Two bytes remain, but after the failure every read gives zero.
	if d.U8("after") != 0 || d.Bool("after") || d.U32("after") != 0 || d.Count("after", 100) != 0 {
		t.Fatal("reads after a failure returned data")
	}
	d.Fail(errors.New("later failure"))
	err := d.Finish()
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "key") {
		t.Fatalf("Finish = %v, want the first failure, at key", err)
	}
}

func TestDecoderFail(t *testing.T) {
	errBad := errors.New("bad version")
	d := NewDecoder([]byte{1, 2, 3})
	d.Fail(errBad)
	d.Fail(errors.New("second"))
	if d.U8("x") != 0 {
		t.Fatal("read after Fail returned data")
	}
	if err := d.Finish(); err != errBad {
		t.Fatalf("Finish = %v, want the first recorded error", err)
	}
}

func TestDecoderCountLimit(t *testing.T) {
	cases := []struct {
		count    uint32
		max      int
		ok       bool
		wantText string
	}{
		{0, 0, true, ""},
		{5, 5, true, ""},
		{6, 5, false, "count 6 exceeds 5"},
		{1, 0, false, "count 1 exceeds 0"},
		{math.MaxUint32, 40, false, "count 4294967295 exceeds 40"},
		{math.MaxUint32, math.MaxInt32, false, "exceeds 2147483647"},
	}
	for _, c := range cases {
		var e Encoder
		e.U32(c.count)
		d := NewDecoder(e.Result())
		n := d.Count("chains", c.max)
		err := d.Finish()
		if c.ok {
			if err != nil || n != int(c.count) {
				t.Errorf("count %d, max %d: %d, %v", c.count, c.max, n, err)
			}
			continue
		}
		if n != 0 || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), c.wantText) || !strings.Contains(err.Error(), "chains") {
			t.Errorf("count %d, max %d: %d, %v", c.count, c.max, n, err)
		}
	}
}

func TestDecoderTrailingData(t *testing.T) {
	for extra := 1; extra <= 5; extra++ {
		d := NewDecoder(make([]byte, 4+extra))
		d.U32("version")
		err := d.Finish()
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes of trailing data", extra)) {
			t.Errorf("%d extra bytes: %v", extra, err)
		}
	}
}

// FuzzLibolmPickleDecoder reads the input with a session-like layout (a
// version, flags, keys and three counted lists) and checks that the decoder
// never panics, never reads past a limit, reports ErrFormat on failure, and
// that what it reads re-encodes to exactly the input.
func FuzzLibolmPickleDecoder(f *testing.F) {
	var e Encoder
	e.U32(1)
	e.Bool(true)
	e.Bytes(fill(32*4, 1))
	e.U32(1)
	e.Bytes(fill(64, 2))
	e.U32(7)
	e.U32(0)
	e.U32(1)
	e.Bytes(fill(64, 3))
	e.U32(9)
	valid := e.Result()
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(append(bytes.Clone(valid), 0))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 200))
	for _, p := range loadKnownPickles(f) {
		if raw, err := Open(p.key(f), p["pickle"]); err == nil {
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		type chain struct {
			pub, key [32]byte
			index    uint32
		}
		d := NewDecoder(in)
		var out Encoder
		out.U32(d.U32("version"))
		out.Bool(d.Bool("received"))
		for range 4 {
			k := d.Array32("key")
			out.Bytes(k[:])
		}
		for _, max := range []int{1, 5, 40} {
			n := d.Count("list", max)
			if n > max {
				t.Fatalf("Count returned %d over its limit %d", n, max)
			}
			out.U32(uint32(n))
			for range n {
				c := chain{pub: d.Array32("pub"), key: d.Array32("key"), index: d.U32("index")}
				out.Bytes(c.pub[:])
				out.Bytes(c.key[:])
				out.U32(c.index)
			}
		}
		err := d.Finish()
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not match ErrFormat", err)
			}
			return
		}
		// Bool normalises non-zero bytes to 1; every other field is kept as read.
		if len(out.Result()) != len(in) {
			t.Fatalf("read %d bytes of %d", len(out.Result()), len(in))
		}
		norm := bytes.Clone(in)
		if norm[4] != 0 {
			norm[4] = 1
		}
		if !bytes.Equal(out.Result(), norm) {
			t.Fatalf("re-encoding differs:\n%x\n%x", out.Result(), norm)
		}
	})
}

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}
