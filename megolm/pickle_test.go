package megolm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/libolmpickle"
	"github.com/xolm/xolm/internal/pickle"
)

func testPickleKey() [32]byte { return [32]byte{1, 2, 3} }

func TestOutboundPickleRoundTrip(t *testing.T) {
	out, in := newTestPair(t, 0)
	mustEncrypt(t, out, "advance")
	key, ad := testPickleKey(), []byte("outbound_group_sessions/room/1")
	p := out.Pickle(&key, ad)
	back, err := UnpickleOutboundGroupSession(p, &key, ad)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.marshal(), out.marshal()) || back.ID() != out.ID() || back.MessageIndex() != 1 {
		t.Fatal("round trip changed the session")
	}
	// Both copies go on to make the same messages, which the receiver reads.
	m1, m2 := mustEncrypt(t, out, "same"), mustEncrypt(t, back, "same")
	if !bytes.Equal(m1, m2) {
		t.Fatal("the unpickled session encrypts differently")
	}
	mustDecrypt(t, in, m2, "same", 1)

	wrongKey := [32]byte{9}
	for name, err := range map[string]error{
		"wrong key":  second(UnpickleOutboundGroupSession(p, &wrongKey, ad)),
		"wrong ad":   second(UnpickleOutboundGroupSession(p, &key, []byte("other row"))),
		"wrong kind": second(UnpickleInboundGroupSession(p, &key, ad)),
	} {
		if !errors.Is(err, ErrPickleAuth) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := UnpickleOutboundGroupSession(p[:10], &key, ad); !errors.Is(err, ErrPickleFormat) {
		t.Errorf("truncated envelope: %v", err)
	}
	flipped := bytes.Clone(p)
	flipped[len(flipped)-1] ^= 1
	if _, err := UnpickleOutboundGroupSession(flipped, &key, ad); !errors.Is(err, ErrPickleAuth) {
		t.Errorf("flipped bit: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestInboundPickleRoundTrip(t *testing.T) {
	out, in := newTestPair(t, 3)
	for i := range 4 {
		msg := mustEncrypt(t, out, "m")
		if i%2 == 1 {
			mustDecrypt(t, in, msg, "m", uint32(3+i))
		}
	}
	exp, _ := in.Export(4)
	imp, _ := ImportInboundGroupSession(exp)
	key := testPickleKey()
	for _, s := range []*InboundGroupSession{in, imp} {
		back, err := UnpickleInboundGroupSession(s.Pickle(&key, nil), &key, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back.marshal(), s.marshal()) || back.latest.counter != s.latest.counter ||
			back.SigningKeyVerified() != s.SigningKeyVerified() || back.FirstKnownIndex() != s.FirstKnownIndex() {
			t.Fatalf("round trip changed %v", s)
		}
		// libolm's format carries the same state.
		viaLibolm, err := ImportLibolmInboundGroupSession(s.LibolmPickle([]byte("k")), []byte("k"))
		if err != nil || !bytes.Equal(viaLibolm.marshal(), s.marshal()) {
			t.Fatalf("libolm round trip changed %v: %v", s, err)
		}
	}
	back, _ := UnpickleInboundGroupSession(in.Pickle(&key, nil), &key, nil)
	mustDecrypt(t, back, mustEncrypt(t, out, "after"), "after", 7)
}

// sealInbound seals a hand-made inbound encoding.
func sealInbound(raw []byte) []byte {
	key := testPickleKey()
	return pickle.Seal(&key, pickle.KindInboundGroup, nil, raw)
}

func TestUnpickleInboundRejects(t *testing.T) {
	_, in := newTestPair(t, 0)
	raw := in.marshal()
	key := testPickleKey()
	open := func(raw []byte) error { return second(UnpickleInboundGroupSession(sealInbound(raw), &key, nil)) }

	if err := open(raw); err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Clone(raw)
	v2[3] = 2
	var verr *PickleVersionError
	if err := open(v2); !errors.As(err, &verr) || verr.Version != 2 || verr.Format != "xolm" {
		t.Fatalf("version 2: %v", err)
	}
	for n := range len(raw) {
		if err := open(raw[:n]); !errors.Is(err, ErrPickleFormat) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if err := open(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("trailing byte: %v", err)
	}
	flag := bytes.Clone(raw)
	flag[len(flag)-1] = 2
	if err := open(flag); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("verified flag 2: %v", err)
	}
	behind := &InboundGroupSession{initial: testRatchet(1, 10), latest: testRatchet(1, 9), signingKey: in.signingKey}
	if err := open(behind.marshal()); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("latest behind initial: %v", err)
	}
}

func TestUnpickleOutboundRejects(t *testing.T) {
	out, _ := newTestPair(t, 0)
	key := testPickleKey()
	open := func(raw []byte) error {
		return second(UnpickleOutboundGroupSession(pickle.Seal(&key, pickle.KindOutboundGroup, nil, raw), &key, nil))
	}
	raw := out.marshal()
	if err := open(raw); err != nil {
		t.Fatal(err)
	}
	for n := range len(raw) {
		if err := open(raw[:n]); !errors.Is(err, ErrPickleFormat) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	form := bytes.Clone(raw)
	form[4+4+ratchetSize] = 7
	if err := open(form); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("unknown key form: %v", err)
	}
	v0 := bytes.Clone(raw)
	v0[3] = 0
	if err := open(v0); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("version 0: %v", err)
	}
}

func TestImportLibolmOutboundRejects(t *testing.T) {
	lv := loadLibolmVectors(t)
	raw, err := libolmpickle.Open(lv.pickleKey, lv.v["outbound_pickle_0"])
	if err != nil {
		t.Fatal(err)
	}
	seal := func(raw []byte) error {
		return second(ImportLibolmOutboundGroupSession(libolmpickle.Seal(lv.pickleKey, raw), lv.pickleKey))
	}
	if err := seal(raw); err != nil {
		t.Fatal(err)
	}
	mismatch := bytes.Clone(raw)
	mismatch[4+ratchetSize+4] ^= 1 // the stored public key
	if err := seal(mismatch); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("public key not matching the private key: %v", err)
	}
	for n := range len(raw) {
		if err := seal(raw[:n]); !errors.Is(err, ErrPickleFormat) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	v2 := bytes.Clone(raw)
	v2[3] = 2
	var verr *PickleVersionError
	if err := seal(v2); !errors.As(err, &verr) || verr.Version != 2 {
		t.Fatalf("version 2: %v", err)
	}
}

// The inbound encoding is built in one buffer of its final size: a buffer
// grown by appending would leave partial copies of the ratchets in the ones
// it outgrew, which nothing clears.
func TestInboundMarshalIsOneBuffer(t *testing.T) {
	_, in := newTestPair(t, 0)
	raw := in.marshal()
	if len(raw) != inboundPickleLen || cap(raw) != len(raw) {
		t.Fatalf("encoding of %d bytes in a buffer of %d, want %d", len(raw), cap(raw), inboundPickleLen)
	}
	var kept []byte
	if n := testing.AllocsPerRun(10, func() { kept = in.marshal() }); n != 1 {
		t.Fatalf("%v allocations, want 1", n)
	}
	clear(kept)
}
