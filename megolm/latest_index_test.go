package megolm

import (
	"bytes"
	"fmt"
	"testing"
)

// LatestIndex follows the highest index decrypted, and a Decrypt that leaves
// it and SigningKeyVerified as they were leaves the session byte-identical.
func TestLatestIndex(t *testing.T) {
	out, in := newTestPair(t, 5)
	if in.LatestIndex() != 5 || in.FirstKnownIndex() != 5 {
		t.Fatalf("new session: latest %d, first known %d", in.LatestIndex(), in.FirstKnownIndex())
	}
	var msgs [][]byte
	for i := range 6 {
		msgs = append(msgs, mustEncrypt(t, out, fmt.Sprint(i)))
	}
	for _, step := range []struct{ msg, latest int }{{2, 7}, {0, 7}, {2, 7}, {5, 10}, {3, 10}, {5, 10}} {
		before := in.marshal()
		mustDecrypt(t, in, msgs[step.msg], fmt.Sprint(step.msg), uint32(5+step.msg))
		if got := in.LatestIndex(); got != uint32(step.latest) {
			t.Fatalf("after index %d: latest %d, want %d", 5+step.msg, got, step.latest)
		}
		moved := in.LatestIndex() != uint32(unmarshalLatest(t, before))
		if changed := !bytes.Equal(before, in.marshal()); changed != moved {
			t.Fatalf("after index %d: session changed %t, latest index moved %t", 5+step.msg, changed, moved)
		}
	}

	// An imported session changes on its first decryption without moving
	// the index: it becomes verified.
	exp, err := in.Export(8)
	if err != nil {
		t.Fatal(err)
	}
	imp, err := ImportInboundGroupSession(exp)
	if err != nil {
		t.Fatal(err)
	}
	before := imp.marshal()
	mustDecrypt(t, imp, msgs[3], "3", 8)
	if imp.LatestIndex() != 8 || !imp.SigningKeyVerified() || bytes.Equal(before, imp.marshal()) {
		t.Fatalf("imported session after its first index: latest %d, verified %t", imp.LatestIndex(), imp.SigningKeyVerified())
	}
}

// unmarshalLatest reads the latest index back from a marshalled session.
func unmarshalLatest(t *testing.T, b []byte) uint32 {
	t.Helper()
	s, err := unmarshalInbound(b)
	if err != nil {
		t.Fatal(err)
	}
	return s.LatestIndex()
}
