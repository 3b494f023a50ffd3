package megolm

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/libolmpickle"
)

// libolmVectors are the values recorded from libolm 3.2.15 in
// testdata/libolm_group_session.txt (see the header there).
type libolmVectors struct {
	v          map[string]string
	random     []byte
	pickleKey  []byte
	plaintexts [][]byte
	messages   [][]byte
}

func loadLibolmVectors(t testing.TB) *libolmVectors {
	t.Helper()
	_, v := readVectors(t, "libolm_group_session.txt")
	lv := &libolmVectors{v: v, random: mustHex(t, v["outbound_random"]), pickleKey: []byte(v["pickle_key"])}
	for i := 0; ; i++ {
		p, ok := v["plaintext_"+strconv.Itoa(i)]
		if !ok {
			break
		}
		lv.plaintexts = append(lv.plaintexts, mustHex(t, p))
		lv.messages = append(lv.messages, mustB64(t, v["message_"+strconv.Itoa(i)]))
	}
	if len(lv.messages) != 4 {
		t.Fatalf("want 4 libolm messages, got %d", len(lv.messages))
	}
	return lv
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := b64.Decode(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return b
}

// TestLibolmOutboundReproduced creates the outbound session from libolm's
// random bytes and checks that every output is libolm's, byte for byte:
// session ID, session keys, messages and pickles.
func TestLibolmOutboundReproduced(t *testing.T) {
	lv := loadLibolmVectors(t)
	s, err := NewOutboundGroupSession(bytes.NewReader(lv.random))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ID(); got != lv.v["session_id"] {
		t.Fatalf("ID %s, want %s", got, lv.v["session_id"])
	}
	if got := b64.Encode(s.SessionKey()); got != lv.v["session_key_0"] {
		t.Fatalf("session key at 0:\n got %s\nwant %s", got, lv.v["session_key_0"])
	}
	if got := s.LibolmPickle(lv.pickleKey); got != lv.v["outbound_pickle_0"] {
		t.Fatalf("libolm pickle at 0:\n got %s\nwant %s", got, lv.v["outbound_pickle_0"])
	}
	for i, p := range lv.plaintexts {
		msg, err := s.Encrypt(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(msg, lv.messages[i]) {
			t.Fatalf("message %d:\n got %x\nwant %x", i, msg, lv.messages[i])
		}
	}
	if got := strconv.Itoa(int(s.MessageIndex())); got != lv.v["message_index_after"] {
		t.Fatalf("index after encrypting: %s", got)
	}
	if got := s.LibolmPickle(lv.pickleKey); got != lv.v["outbound_pickle_4"] {
		t.Fatal("libolm pickle at 4 differs")
	}
	if got := s.LibolmPickle(nil); got != lv.v["outbound_pickle_4_empty_key"] {
		t.Fatal("libolm pickle under the empty key differs")
	}
	if got := b64.Encode(s.SessionKey()); got != lv.v["session_key_4"] {
		t.Fatal("session key at 4 differs")
	}
}

// TestImportLibolmOutbound imports libolm's pickle (its private key is in
// libolm's expanded form) and checks the session goes on exactly as libolm's.
func TestImportLibolmOutbound(t *testing.T) {
	lv := loadLibolmVectors(t)
	s, err := ImportLibolmOutboundGroupSession(lv.v["outbound_pickle_0"], lv.pickleKey)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != lv.v["session_id"] || s.MessageIndex() != 0 {
		t.Fatalf("imported %v", s)
	}
	for i, p := range lv.plaintexts {
		msg, _ := s.Encrypt(p)
		if !bytes.Equal(msg, lv.messages[i]) {
			t.Fatalf("message %d from the imported session differs", i)
		}
	}
	if s.LibolmPickle(lv.pickleKey) != lv.v["outbound_pickle_4"] {
		t.Fatal("re-pickled imported session differs from libolm's")
	}
	// The own format keeps the expanded key of an imported session.
	key := testPickleKey()
	back, err := UnpickleOutboundGroupSession(s.Pickle(&key, nil), &key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.LibolmPickle(lv.pickleKey) != lv.v["outbound_pickle_4"] {
		t.Fatal("own pickle round trip of an imported session changed it")
	}

	if _, err := ImportLibolmOutboundGroupSession(lv.v["outbound_pickle_0"], []byte("wrong")); !errors.Is(err, ErrPickleAuth) {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := ImportLibolmOutboundGroupSession(lv.v["inbound_pickle_fresh"], lv.pickleKey); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("inbound pickle read as outbound: %v", err)
	}
}

// TestLibolmInboundReproduced follows libolm's inbound session through
// creation, one decrypt and two exports, comparing pickles and keys.
func TestLibolmInboundReproduced(t *testing.T) {
	lv := loadLibolmVectors(t)
	s, err := NewInboundGroupSession(mustB64(t, lv.v["session_key_0"]))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.LibolmPickle(lv.pickleKey); got != lv.v["inbound_pickle_fresh"] {
		t.Fatalf("fresh inbound pickle:\n got %s\nwant %s", got, lv.v["inbound_pickle_fresh"])
	}
	pt, idx, err := s.Decrypt(lv.messages[2])
	if err != nil || idx != 2 || !bytes.Equal(pt, lv.plaintexts[2]) {
		t.Fatalf("decrypt: %q %d %v", pt, idx, err)
	}
	// libolm moved its latest ratchet to index 2, as this does.
	if got := s.LibolmPickle(lv.pickleKey); got != lv.v["inbound_pickle_after_2"] {
		t.Fatal("inbound pickle after decrypting index 2 differs from libolm's")
	}
	for _, i := range []uint32{0, 3} {
		exp, err := s.Export(i)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b64.Encode(exp), lv.v["export_"+strconv.Itoa(int(i))]; got != want {
			t.Fatalf("export at %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestImportLibolmInbound reads libolm's inbound pickles and the pickle of an
// imported (unverified) session.
func TestImportLibolmInbound(t *testing.T) {
	lv := loadLibolmVectors(t)
	s, err := ImportLibolmInboundGroupSession(lv.v["inbound_pickle_after_2"], lv.pickleKey)
	if err != nil {
		t.Fatal(err)
	}
	if s.FirstKnownIndex() != 0 || s.latest.counter != 2 || !s.SigningKeyVerified() || s.ID() != lv.v["session_id"] {
		t.Fatalf("imported %v, latest %d", s, s.latest.counter)
	}
	for i, m := range lv.messages {
		pt, idx, err := s.Decrypt(m)
		if err != nil || int(idx) != i || !bytes.Equal(pt, lv.plaintexts[i]) {
			t.Fatalf("message %d: %q %d %v", i, pt, idx, err)
		}
	}

	imp, err := ImportLibolmInboundGroupSession(lv.v["imported_pickle_1"], lv.pickleKey)
	if err != nil {
		t.Fatal(err)
	}
	if imp.FirstKnownIndex() != 1 || imp.SigningKeyVerified() {
		t.Fatalf("imported from an export: %v", imp)
	}
	// The same import done here pickles to libolm's bytes.
	exp1, _ := s.Export(1)
	mine, err := ImportInboundGroupSession(exp1)
	if err != nil {
		t.Fatal(err)
	}
	if mine.LibolmPickle(lv.pickleKey) != lv.v["imported_pickle_1"] {
		t.Fatal("pickle of an imported session differs from libolm's")
	}
	if _, _, err := imp.Decrypt(lv.messages[0]); !errors.Is(err, ErrUnknownMessageIndex) {
		t.Fatalf("index 0 from a session known from 1: %v", err)
	}
	if _, _, err := imp.Decrypt(lv.messages[1]); err != nil || !imp.SigningKeyVerified() {
		t.Fatalf("decrypting must verify the imported session: %v", err)
	}
}

// TestImportLibolmInboundVersion1 reads the older inbound layout, which has no
// verified flag and is read as verified, and rejects other versions.
func TestImportLibolmInboundVersion1(t *testing.T) {
	lv := loadLibolmVectors(t)
	raw, err := libolmpickle.Open(lv.pickleKey, lv.v["imported_pickle_1"])
	if err != nil {
		t.Fatal(err)
	}
	if raw[3] != 2 || raw[len(raw)-1] != 0 {
		t.Fatalf("unexpected libolm layout: version %d, verified %d", raw[3], raw[len(raw)-1])
	}
	v1 := bytes.Clone(raw[:len(raw)-1])
	v1[3] = 1
	s, err := ImportLibolmInboundGroupSession(libolmpickle.Seal(lv.pickleKey, v1), lv.pickleKey)
	if err != nil {
		t.Fatal(err)
	}
	if !s.SigningKeyVerified() || s.FirstKnownIndex() != 1 {
		t.Fatalf("version 1: %v", s)
	}

	v3 := bytes.Clone(raw)
	v3[3] = 3
	_, err = ImportLibolmInboundGroupSession(libolmpickle.Seal(lv.pickleKey, v3), lv.pickleKey)
	var verr *PickleVersionError
	if !errors.As(err, &verr) || verr.Version != 3 || verr.Format != "libolm" || !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("version 3: %v", err)
	}
	trailing := append(bytes.Clone(raw), 0)
	if _, err := ImportLibolmInboundGroupSession(libolmpickle.Seal(lv.pickleKey, trailing), lv.pickleKey); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("trailing byte: %v", err)
	}
	for n := range len(raw) {
		if _, err := ImportLibolmInboundGroupSession(libolmpickle.Seal(lv.pickleKey, raw[:n]), lv.pickleKey); !errors.Is(err, ErrPickleFormat) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if _, err := ImportLibolmInboundGroupSession("not base64!", lv.pickleKey); !errors.Is(err, ErrPickleFormat) {
		t.Fatalf("bad base64: %v", err)
	}
	if _, err := ImportLibolmInboundGroupSession(lv.v["imported_pickle_1"], nil); !errors.Is(err, ErrPickleAuth) {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestImportLibolmInboundLatestBehind checks that a libolm pickle whose
// latest ratchet is behind the initial one as plain integers (after libolm's
// modular comparison let it wrap) restarts from the initial ratchet.
func TestImportLibolmInboundLatestBehind(t *testing.T) {
	in := &InboundGroupSession{initial: testRatchet(1, 0xfffffff0), latest: testRatchet(2, 3), verified: true}
	in.signingKey = testSigningKey().PublicKey()
	s, err := ImportLibolmInboundGroupSession(in.LibolmPickle(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !s.latest.equal(&s.initial) {
		t.Fatal("latest ratchet behind the initial one was kept")
	}
}
