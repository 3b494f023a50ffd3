// Package interop holds xolm's interoperability tests against libolm 3.2
// (@matrix-org/olm, libolm compiled to wasm): replays of recorded libolm
// transcripts, which need nothing external, and live conversations with
// libolm running in Node through internal/nodepeer, in both directions.
//
// The package has no code outside its tests.
package interop
