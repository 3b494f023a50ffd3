package megolm

import (
	"testing"
)

func TestCompare(t *testing.T) {
	out, at0 := newTestPair(t, 0)
	out.ratchet.advanceTo(1000)
	at1000, err := NewInboundGroupSession(out.SessionKey())
	if err != nil {
		t.Fatal(err)
	}
	exp0, _ := at0.Export(0)
	alsoAt0, _ := ImportInboundGroupSession(exp0)

	other, err := NewOutboundGroupSession(testRand(7))
	if err != nil {
		t.Fatal(err)
	}
	otherIn, _ := NewInboundGroupSession(other.SessionKey())

	// Same signing key, but a ratchet that is not on the chain: what a
	// forwarded key claiming an earlier index without knowing it would be.
	forged := at0.Clone()
	forged.initial = testRatchet(99, 0)
	forged.latest = forged.initial

	for _, c := range []struct {
		name string
		a, b *InboundGroupSession
		want Ordering
	}{
		{"same", at0, at0, Equal},
		{"same chain, same index", at0, alsoAt0, Equal},
		{"lower index", at0, at1000, Better},
		{"higher index", at1000, at0, Worse},
		{"other key", at0, otherIn, Unconnected},
		{"forged lower index", forged, at1000, Unconnected},
		{"forged same index", forged, at0, Unconnected},
	} {
		if got := c.a.Compare(c.b); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	before0, before1000 := at0.marshal(), at1000.marshal()
	at0.Compare(at1000)
	if string(before0) != string(at0.marshal()) || string(before1000) != string(at1000.marshal()) {
		t.Fatal("Compare changed a session")
	}
	if Better.String() != "better" || Ordering(9).String() != "Ordering(invalid)" {
		t.Fatal("Ordering strings")
	}
}

func TestMerge(t *testing.T) {
	// A verified copy known from index 10 that has decrypted up to 11, and an
	// unverified one known from index 0.
	out, verified := newTestPair(t, 10)
	early := &OutboundGroupSession{ratchet: verified.initial, signingKey: out.signingKey} // sends at 10
	mustDecrypt(t, verified, mustEncrypt(t, out, "x"), "x", 10)
	mustDecrypt(t, verified, mustEncrypt(t, out, "y"), "y", 11)

	rewound, err := NewOutboundGroupSession(testRand(1)) // newTestPair's session, at index 0
	if err != nil {
		t.Fatal(err)
	}
	exp := encodeExportedKey(&rewound.ratchet, rewound.SigningKey())
	unverified, err := ImportInboundGroupSession(exp)
	if err != nil {
		t.Fatal(err)
	}
	if unverified.Compare(verified) != Better {
		t.Fatal("the copy from index 0 should be better")
	}
	for _, m := range []func() (*InboundGroupSession, bool){
		func() (*InboundGroupSession, bool) { return unverified.Merge(verified) },
		func() (*InboundGroupSession, bool) { return verified.Merge(unverified) },
	} {
		merged, ok := m()
		if !ok {
			t.Fatal("connected sessions did not merge")
		}
		if merged.FirstKnownIndex() != 0 || merged.latest.counter != 11 || !merged.SigningKeyVerified() {
			t.Fatalf("merged: first %d, latest %d, verified %v", merged.FirstKnownIndex(), merged.latest.counter, merged.SigningKeyVerified())
		}
		again := early.Clone() // index 10 each time
		mustDecrypt(t, merged, mustEncrypt(t, again, "early"), "early", 10)
	}
	if unverified.SigningKeyVerified() || unverified.latest.counter != 0 {
		t.Fatal("Merge changed its receiver")
	}

	other, _ := NewOutboundGroupSession(testRand(8))
	otherIn, _ := NewInboundGroupSession(other.SessionKey())
	if m, ok := verified.Merge(otherIn); ok || m != nil {
		t.Fatal("unconnected sessions merged")
	}
}
