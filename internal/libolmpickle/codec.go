package libolmpickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrFormat is matched by every decoding failure of a raw pickle.
var ErrFormat = errors.New("libolm pickle: invalid format")

// Encoder appends libolm's raw encodings: u32 big-endian, u8, fixed bytes.
type Encoder struct {
	b []byte
}

// Grow makes room for n more bytes, so that an encoder told its output's
// size ahead allocates once.
func (e *Encoder) Grow(n int) { e.b = slices.Grow(e.b, n) }

// U32 appends a big-endian uint32.
func (e *Encoder) U32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }

// U8 appends one byte.
func (e *Encoder) U8(v uint8) { e.b = append(e.b, v) }

// Bool appends a boolean as one byte.
func (e *Encoder) Bool(v bool) {
	if v {
		e.U8(1)
	} else {
		e.U8(0)
	}
}

// Bytes appends b as is (fixed-length fields carry no length prefix).
func (e *Encoder) Bytes(b []byte) { e.b = append(e.b, b...) }

// Result returns the encoding so far. The caller owns it and should clear it
// after sealing, since it holds secrets.
func (e *Encoder) Result() []byte { return e.b }

// Decoder reads libolm's raw encodings. The first failure sticks: later reads
// return zero values, and Err reports what went wrong.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder reads b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

func (d *Decoder) take(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = fmt.Errorf("%w: truncated at %s", ErrFormat, what)
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

// U32 reads a big-endian uint32.
func (d *Decoder) U32(what string) uint32 {
	if b := d.take(4, what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// U8 reads one byte.
func (d *Decoder) U8(what string) uint8 {
	if b := d.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

// Bool reads one byte as a boolean; libolm treats any non-zero byte as true.
func (d *Decoder) Bool(what string) bool { return d.U8(what) != 0 }

// Array32 reads 32 bytes.
func (d *Decoder) Array32(what string) (a [32]byte) {
	copy(a[:], d.take(32, what))
	return a
}

// Array64 reads 64 bytes.
func (d *Decoder) Array64(what string) (a [64]byte) {
	copy(a[:], d.take(64, what))
	return a
}

// Array128 reads 128 bytes.
func (d *Decoder) Array128(what string) (a [128]byte) {
	copy(a[:], d.take(128, what))
	return a
}

// Count reads a u32 list length and checks it against max.
func (d *Decoder) Count(what string, max int) int {
	n := d.U32(what)
	if d.err == nil && uint64(n) > uint64(max) {
		d.err = fmt.Errorf("%w: %s count %d exceeds %d", ErrFormat, what, n, max)
		return 0
	}
	return int(n)
}

// Fail records err as the decoder's error if none is recorded yet.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Finish reports the first error, or an error if bytes are left over (libolm's
// OLM_PICKLE_EXTRA_DATA).
func (d *Decoder) Finish() error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes of trailing data", ErrFormat, len(d.b))
	}
	return nil
}
