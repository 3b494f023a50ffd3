//go:build libolm && cgo

// Package libolm measures xolm against libolm, the C++ reference
// implementation of Olm and Megolm, on the same machine in the same run.
//
// It builds only with the libolm build tag and cgo, against the system's
// libolm (Debian's libolm-dev: headers in /usr/include/olm, linked with
// -lolm), so normal builds and tests never see it:
//
//	apt-get install libolm-dev
//	go test -tags libolm -bench . -benchmem ./bench/libolm
//
// Each benchmark runs one operation twice as sub-benchmarks, libolm first and
// then xolm, from the same state (xolm's accounts and sessions are imported
// from libolm's pickles) on the same inputs: a 1 KiB plaintext, the same
// random bytes, the same messages. libolm's API speaks unpadded base64, so the
// xolm side includes the base64 encoding or decoding a Matrix client does
// around it. The xolm sub-benchmark reports speedup-x: libolm's ns/op divided
// by xolm's, both measured in this run.
//
// The wrapper here is the smallest that the benchmarks need: accounts,
// one-to-one sessions and group sessions, each in C memory that the caller
// frees.
package libolm
