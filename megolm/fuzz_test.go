package megolm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/pickle"
)

// Fuzz targets for importing an exported session key and for xolm's own
// pickles (FuzzDecrypt and FuzzSessionKeys cover the others). Inputs worth
// keeping live in testdata/fuzz/FuzzX and run with go test.

// realSession is a session whose messages the fuzzed sessions try to
// decrypt: the exported keys of the real session at each index from 0 to
// one past its last message, and some of its messages.
type realSession struct {
	exports  map[uint32][]byte
	messages []realMessage
}

type realMessage struct {
	body      []byte
	plaintext []byte
	index     uint32
}

// realSessions returns libolm's session of testdata/libolm_group_session.txt
// (messages 1 and 3) and one of ours that starts at index 70,000 (its first
// and third messages).
func realSessions(f *testing.F) []realSession {
	lv := loadLibolmVectors(f)
	libolm, err := ImportInboundGroupSession(mustB64(f, lv.v["export_0"]))
	if err != nil {
		f.Fatal(err)
	}
	ours, in := newTestPair(f, 70_000)
	var texts, msgs [][]byte
	for _, t := range []string{"first", "second", "third"} {
		texts = append(texts, []byte(t))
		msgs = append(msgs, mustEncrypt(f, ours, t))
	}
	var out []realSession
	for _, c := range []struct {
		s               *InboundGroupSession
		texts, messages [][]byte
		first           uint32
		pick            []int
	}{
		{libolm, lv.plaintexts, lv.messages, 0, []int{1, 3}},
		{in, texts, msgs, 70_000, []int{0, 2}},
	} {
		r := realSession{exports: map[uint32][]byte{}}
		for i := range uint32(len(c.messages) + 1) {
			if r.exports[c.first+i], err = c.s.Export(c.first + i); err != nil {
				f.Fatal(err)
			}
		}
		for _, i := range c.pick {
			r.messages = append(r.messages, realMessage{c.messages[i], c.texts[i], c.first + uint32(i)})
		}
		out = append(out, r)
	}
	return out
}

// FuzzImportInboundGroupSession imports arbitrary bytes as an exported
// session key (version 1). Properties: no panic; an error is
// ErrInvalidSessionKey with no session, and an untouched export is never
// refused; an imported session exports exactly its input at its first known
// index and nothing below it, starts unverified, and takes its ID and index
// from the input. Each real message then decrypts on a copy of it either to
// the real plaintext (the ratchet is the real one: it exports the real key at
// that index), or fails leaving the copy byte-identical; a failure is allowed
// only if the input is not a real export at or below the message's index.
func FuzzImportInboundGroupSession(f *testing.F) {
	reals := realSessions(f)
	for _, r := range reals {
		for _, exp := range r.exports {
			f.Add(exp)
			for _, at := range []int{0, 1, 4, 5, 70, 132, 133, 164} {
				flipped := bytes.Clone(exp)
				flipped[at] ^= 1 << (at % 8)
				f.Add(flipped)
			}
			f.Add(exp[:len(exp)-1])
			f.Add(append(bytes.Clone(exp), 0))
		}
	}
	out, _ := newTestPair(f, 5)
	f.Add(out.SessionKey())
	f.Add([]byte{exportedKeyVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ImportInboundGroupSession(b)
		if err != nil {
			if s != nil || !errors.Is(err, ErrInvalidSessionKey) {
				t.Fatalf("got %v, %v", s, err)
			}
			for _, r := range reals {
				for _, exp := range r.exports {
					if bytes.Equal(b, exp) {
						t.Fatalf("a real export was refused: %v", err)
					}
				}
			}
			return
		}
		first := s.FirstKnownIndex()
		if exp, err := s.Export(first); err != nil || !bytes.Equal(exp, b) || !bytes.Equal(s.ExportAtFirstKnownIndex(), b) {
			t.Fatalf("%x exports as %x (%v)", b, exp, err)
		}
		if first != binary.BigEndian.Uint32(b[1:5]) || s.ID() != b64.Encode(b[133:165]) || s.SigningKeyVerified() {
			t.Fatalf("imported %v from %x", s, b)
		}
		if first > 0 {
			if _, err := s.Export(first - 1); !errors.Is(err, ErrUnknownMessageIndex) {
				t.Fatalf("exported below the first known index: %v", err)
			}
		}
		for _, r := range reals {
			for _, m := range r.messages {
				checkRealDecrypt(t, s, b, r, m)
			}
		}
	})
}

// checkRealDecrypt decrypts a real message m of r on a copy of s, imported
// from b.
func checkRealDecrypt(t *testing.T, s *InboundGroupSession, b []byte, r realSession, m realMessage) {
	t.Helper()
	c := s.Clone()
	before := c.marshal()
	pt, index, err := c.Decrypt(m.body)
	if err != nil {
		if pt != nil || !bytes.Equal(before, c.marshal()) {
			t.Fatalf("failed decrypt (%v) returned %q or changed the session", err, pt)
		}
		for i, exp := range r.exports {
			if i <= m.index && bytes.Equal(b, exp) {
				t.Fatalf("the real export at %d does not decrypt index %d: %v", i, m.index, err)
			}
		}
		return
	}
	if !bytes.Equal(pt, m.plaintext) || index != m.index || !c.SigningKeyVerified() {
		t.Fatalf("decrypted %q at %d, want %q at %d", pt, index, m.plaintext, m.index)
	}
	if exp, err := c.Export(m.index); err != nil || !bytes.Equal(exp, r.exports[m.index]) {
		t.Fatalf("a session that decrypted index %d is not the real one there (%v)", m.index, err)
	}
}

// FuzzUnpickleOwnFormat seals arbitrary bytes in xolm's pickle envelope and
// opens them as an outbound and as an inbound session, so that the fuzzer
// reaches the decoders behind the authentication. Properties: no panic; an
// error is ErrPickleFormat (never ErrPickleAuth) with no session; a decoded
// session pickles to an encoding of the same length as its input, which
// unpickles to a session that encodes the same again.
func FuzzUnpickleOwnFormat(f *testing.F) {
	key := testPickleKey()
	for _, p := range ownPickleSeeds(f) {
		raw, err := pickle.Open(&key, p.kind, nil, p.blob)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(raw[:len(raw)-1])
		f.Add(append(bytes.Clone(raw), 0))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := UnpickleOutboundGroupSession(pickle.Seal(&key, pickle.KindOutboundGroup, nil, raw), &key, nil)
		checkUnpickleError(t, out == nil, err)
		if err == nil {
			back, err := UnpickleOutboundGroupSession(out.Pickle(&key, nil), &key, nil)
			if err != nil {
				t.Fatalf("a decoded session does not unpickle again: %v", err)
			}
			enc := out.marshal()
			if len(enc) != len(raw) || !bytes.Equal(enc, back.marshal()) || back.ID() != out.ID() {
				t.Fatalf("outbound %x re-encodes as %x, then %x", raw, enc, back.marshal())
			}
			if _, err := NewInboundGroupSession(out.SessionKey()); err != nil {
				t.Fatalf("outbound %x signs its session key with a key other than its ID: %v", raw, err)
			}
		}
		in, err := UnpickleInboundGroupSession(pickle.Seal(&key, pickle.KindInboundGroup, nil, raw), &key, nil)
		checkUnpickleError(t, in == nil, err)
		if err == nil {
			back, err := UnpickleInboundGroupSession(in.Pickle(&key, nil), &key, nil)
			if err != nil {
				t.Fatalf("a decoded session does not unpickle again: %v", err)
			}
			enc := in.marshal()
			if len(enc) != len(raw) || !bytes.Equal(enc, back.marshal()) || !bytes.Equal(enc, raw) {
				t.Fatalf("inbound %x re-encodes as %x, then %x", raw, enc, back.marshal())
			}
		}
	})
}

// checkUnpickleError checks the outcome of unpickling an authentic blob.
func checkUnpickleError(t *testing.T, isNil bool, err error) {
	t.Helper()
	switch {
	case err == nil && isNil:
		t.Fatal("no session and no error")
	case err != nil && !isNil:
		t.Fatalf("a session returned with error %v", err)
	case err != nil && (!errors.Is(err, ErrPickleFormat) || errors.Is(err, ErrPickleAuth)):
		t.Fatalf("authentic pickle refused with %v", err)
	}
}

type sealedSeed struct {
	kind pickle.Kind
	blob []byte
}

// ownPickleSeeds returns pickles of every shape: outbound sessions with a
// seed and (imported from libolm) with an expanded key, and inbound sessions
// verified and not, with the latest ratchet at and beyond the initial one.
func ownPickleSeeds(f *testing.F) []sealedSeed {
	key := testPickleKey()
	out, in := newTestPair(f, 3)
	mustDecrypt(f, in, mustEncrypt(f, out, "x"), "x", 3)
	mustDecrypt(f, in, mustEncrypt(f, out, "y"), "y", 4)
	exp, err := in.Export(4)
	if err != nil {
		f.Fatal(err)
	}
	imported, err := ImportInboundGroupSession(exp)
	if err != nil {
		f.Fatal(err)
	}
	lv := loadLibolmVectors(f)
	libolm, err := ImportLibolmOutboundGroupSession(lv.v["outbound_pickle_4"], lv.pickleKey)
	if err != nil {
		f.Fatal(err)
	}
	_, fresh := newTestPair(f, 0)
	var seeds []sealedSeed
	for _, o := range []*OutboundGroupSession{out, libolm} {
		seeds = append(seeds, sealedSeed{pickle.KindOutboundGroup, o.Pickle(&key, nil)})
	}
	for _, i := range []*InboundGroupSession{in, imported, fresh} {
		seeds = append(seeds, sealedSeed{pickle.KindInboundGroup, i.Pickle(&key, nil)})
	}
	return seeds
}
