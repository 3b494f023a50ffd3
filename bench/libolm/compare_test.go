//go:build libolm && cgo

package libolm

import (
	"encoding/base64"
	"testing"
)

// plaintext is the 1 KiB payload of every benchmark.
var plaintext = make([]byte, 1024)

// pickleKey encrypts the pickles that carry libolm's state over to xolm.
var pickleKey = []byte("bench pickle key")

// b64 is the dialect of libolm's API and of Matrix: unpadded standard base64.
var b64 = base64.RawStdEncoding

// compare runs one operation as two sub-benchmarks, libolm's first, then
// xolm's, and reports on xolm's how many times faster it ran: libolm's
// ns/op over xolm's. With -count n each side runs n times in a row, and the
// k-th xolm run is divided into the k-th libolm run. Each side must set up
// its own state, as a side runs again after itself. Run with a -bench pattern
// that selects only xolm's side, it reports no ratio.
func compare(b *testing.B, libolm, xolm func(b *testing.B)) {
	var libolmNs []float64
	b.Run("libolm", func(b *testing.B) {
		b.ReportAllocs()
		libolm(b)
		libolmNs = append(libolmNs, nsPerOp(b))
	})
	runs := 0
	b.Run("xolm", func(b *testing.B) {
		b.ReportAllocs()
		xolm(b)
		if runs < len(libolmNs) {
			b.ReportMetric(libolmNs[runs]/nsPerOp(b), "speedup-x")
		}
		runs++
	})
}

// nsPerOp is the ns/op of a benchmark whose b.Loop has finished.
func nsPerOp(b *testing.B) float64 {
	if b.N == 0 {
		return 0
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// stream is deterministic randomness: the bytes it serves depend only on its
// tag and on how many it has served, so a libolm buffer filled from a fresh
// stream and an xolm Read from another hold the same bytes, however xolm
// splits its reads. Any 32 bytes are a valid Curve25519 or Ed25519 secret.
type stream struct {
	tag byte
	n   int
}

func (s *stream) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(s.n*73) ^ s.tag
		s.n++
	}
	return len(p), nil
}

// randomBytes returns the first n bytes of the stream with the given tag.
func randomBytes(tag byte, n int) []byte {
	p := make([]byte, n)
	(&stream{tag: tag}).Read(p)
	return p
}

// refill restores buf to the first bytes of the stream with the given tag:
// libolm wipes every random buffer it is given.
func refill(buf []byte, tag byte) {
	(&stream{tag: tag}).Read(buf)
}
