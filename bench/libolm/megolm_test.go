//go:build libolm && cgo

package libolm

import (
	"bytes"
	"testing"

	"github.com/xolm/xolm/megolm"
)

// groupRandomSize is what libolm takes to create an outbound group session:
// the 128-byte ratchet, then the Ed25519 seed.
const groupRandomSize = 160

// farIndex is how far the advance benchmark moves a fresh ratchet.
const farIndex = 1_000_000

// megolmFixture is an outbound group session in each library, made from the
// same randomness, and libolm's session key at index 0.
type megolmFixture struct {
	out        *outboundGroupSession
	xOut       *megolm.OutboundGroupSession
	sessionKey string // base64, at index 0
}

func newMegolmFixture(t testing.TB) *megolmFixture {
	t.Helper()
	out, err := newOutboundGroupSession(randomBytes(tagGroup, groupRandomSize))
	check(t, err)
	t.Cleanup(out.free)
	xOut, err := megolm.NewOutboundGroupSession(&stream{tag: tagGroup})
	check(t, err)
	key, err := out.sessionKey()
	check(t, err)
	return &megolmFixture{out: out, xOut: xOut, sessionKey: key}
}

// inbound returns the inbound sessions of both libraries at index 0.
func (f *megolmFixture) inbound(t testing.TB) (*inboundGroupSession, *megolm.InboundGroupSession) {
	t.Helper()
	in, err := newInboundGroupSession(f.sessionKey)
	check(t, err)
	t.Cleanup(in.free)
	raw, err := b64.DecodeString(f.sessionKey)
	check(t, err)
	xIn, err := megolm.NewInboundGroupSession(raw)
	check(t, err)
	return in, xIn
}

// TestMegolmSameWork checks that the two sides of each Megolm benchmark do
// the same work: from the same randomness the sessions and their messages
// are byte-identical, each side decrypts the other's messages, and the keys
// exported a million indices ahead are the same.
func TestMegolmSameWork(t *testing.T) {
	f := newMegolmFixture(t)
	if b64.EncodeToString(f.xOut.SessionKey()) != f.sessionKey {
		t.Fatal("xolm's session key differs from libolm's")
	}
	in, xIn := f.inbound(t)
	for i := range uint32(3) {
		want, err := f.out.encrypt(plaintext)
		check(t, err)
		got, err := f.xOut.Encrypt(plaintext)
		check(t, err)
		if b64.EncodeToString(got) != string(want) {
			t.Fatalf("message %d: xolm's differs from libolm's", i)
		}
		fromXolm, index, err := in.decrypt(b64.EncodeToString(got))
		check(t, err)
		fromLibolm, xIndex, err := xIn.Decrypt(got)
		check(t, err)
		if !bytes.Equal(fromXolm, plaintext) || !bytes.Equal(fromLibolm, plaintext) || index != i || xIndex != i {
			t.Fatalf("message %d: wrong plaintext or index (%d, %d)", i, index, xIndex)
		}
	}

	in, xIn = f.inbound(t)
	want, err := in.export(farIndex)
	check(t, err)
	got, err := xIn.Export(farIndex)
	check(t, err)
	if b64.EncodeToString(got) != string(want) {
		t.Fatal("the keys exported a million indices ahead differ")
	}
}

func BenchmarkMegolmEncrypt(b *testing.B) {
	f := newMegolmFixture(b)
	compare(b, func(tb testing.TB) *side {
		return &side{op: func() {
			_, err := f.out.encrypt(plaintext)
			check(tb, err)
		}}
	}, func(tb testing.TB) *side {
		return &side{op: func() {
			msg, err := f.xOut.Encrypt(plaintext)
			check(tb, err)
			b64.EncodeToString(msg)
		}}
	})
}

// BenchmarkMegolmDecrypt decrypts the same batch of messages, in order, each
// a ratchet step from the one before.
func BenchmarkMegolmDecrypt(b *testing.B) {
	f := newMegolmFixture(b)
	msgs := make([]string, batch)
	for i := range msgs {
		msg, err := f.out.encrypt(plaintext)
		check(b, err)
		msgs[i] = string(msg)
	}
	compare(b, func(tb testing.TB) *side {
		in, _ := f.inbound(tb)
		sd := &side{every: batch}
		sd.reset = func() { check(tb, in.init(f.sessionKey)) }
		sd.op = func() {
			_, _, err := in.decrypt(msgs[sd.done])
			check(tb, err)
		}
		return sd
	}, func(tb testing.TB) *side {
		_, base := f.inbound(tb)
		var s *megolm.InboundGroupSession
		sd := &side{every: batch}
		sd.reset = func() { s = base.Clone() }
		sd.op = func() {
			raw, err := b64.DecodeString(msgs[sd.done])
			check(tb, err)
			_, _, err = s.Decrypt(raw)
			check(tb, err)
		}
		return sd
	})
}

// BenchmarkMegolmAdvanceTo1M moves a ratchet at index 0 a million indices
// ahead. libolm's API reaches its ratchet advance only through decryption
// and export, so both sides export the session key at index 1,000,000 from
// a session that has decrypted nothing: the advance, then 165 bytes to
// encode. libolm's export keeps the advanced ratchet as the session's latest
// (a second export at the same index costs almost nothing), so its session is
// made anew, untimed, before every export; xolm's Export leaves the session
// as it was.
func BenchmarkMegolmAdvanceTo1M(b *testing.B) {
	f := newMegolmFixture(b)
	compare(b, func(tb testing.TB) *side {
		in, _ := f.inbound(tb)
		return &side{
			reset: func() { check(tb, in.init(f.sessionKey)) },
			every: 1,
			op: func() {
				_, err := in.export(farIndex)
				check(tb, err)
			},
		}
	}, func(tb testing.TB) *side {
		_, in := f.inbound(tb)
		return &side{op: func() {
			key, err := in.Export(farIndex)
			check(tb, err)
			b64.EncodeToString(key)
		}}
	})
}
