package wire

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

// Indices at the edges of the one-, two- and three-byte varint encodings,
// and the largest a 32-bit counter can hold.
var testIndices = []uint32{0, 1, 127, 128, 200, 16383, 16384, 1<<21 - 1, 1 << 21, math.MaxUint32}

func testKey(seed byte) *[KeyLength]byte {
	var k [KeyLength]byte
	for i := range k {
		k[i] = seed + byte(i)
	}
	return &k
}

func testCiphertext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + n)
	}
	return b
}

// sealOlm encodes a normal message and fills in mac as its MAC.
func sealOlm(key *[KeyLength]byte, index uint32, ct []byte, mac string) []byte {
	b := EncodeOlmMessage(key, index, ct)
	copy(b[len(b)-MACLength:], mac)
	return b
}

// olmBody builds a message from explicit encoded fields, so tests can
// reorder, repeat or mistype them.
func olmBody(fields ...[]byte) []byte {
	return append(cat(append([][]byte{{Version}}, fields...)...), "MAC-8BYT"...)
}

func olmKeyField(k *[KeyLength]byte) []byte { return appendBytesField(nil, olmRatchetKey, k[:]) }
func olmIndexField(i uint64) []byte         { return appendVarintField(nil, olmChainIndex, i) }
func olmCTField(ct []byte) []byte           { return appendBytesField(nil, olmCiphertext, ct) }

func TestOlmMessageRoundTrip(t *testing.T) {
	key := testKey(0x40)
	for _, index := range testIndices {
		for n := 0; n <= 300; n++ {
			ct := testCiphertext(n)
			b := sealOlm(key, index, ct, "12345678")
			if len(b) != OlmMessageLen(index, n) {
				t.Fatalf("index %d, %d bytes: length %d, OlmMessageLen %d", index, n, len(b), OlmMessageLen(index, n))
			}
			m, err := DecodeOlmMessage(b)
			if err != nil {
				t.Fatalf("index %d, %d bytes: %v", index, n, err)
			}
			if m.RatchetKey != *key || m.ChainIndex != index || !bytes.Equal(m.Ciphertext, ct) || string(m.MAC[:]) != "12345678" {
				t.Fatalf("index %d, %d bytes: decoded %+v", index, n, m)
			}
			if !bytes.Equal(m.Authenticated(), b[:len(b)-MACLength]) {
				t.Fatalf("index %d, %d bytes: Authenticated() is not the message minus its MAC", index, n)
			}
			again := sealOlm(&m.RatchetKey, m.ChainIndex, m.Ciphertext, string(m.MAC[:]))
			if !bytes.Equal(again, b) {
				t.Fatalf("index %d, %d bytes: re-encoding gives %x, want %x", index, n, again, b)
			}
		}
	}
}

// TestOlmMessageLayout pins the bytes: version, 0x0A key, 0x10 index,
// 0x22 ciphertext, MAC (PROTOCOL §2.6; libolm and vodozemac emit this order).
func TestOlmMessageLayout(t *testing.T) {
	key := testKey(0)
	got := EncodeOlmMessage(key, 300, []byte("ct"))
	want := cat([]byte{0x03, 0x0a, 0x20}, key[:], []byte{0x10, 0xac, 0x02, 0x22, 0x02, 'c', 't'}, make([]byte, MACLength))
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
	// The counter is written even when it is 0: libolm rejects a message without it.
	if zero := EncodeOlmMessage(key, 0, nil); !bytes.Contains(zero, []byte{0x10, 0x00, 0x22, 0x00}) {
		t.Fatalf("index 0 not emitted: %x", zero)
	}
}

func TestOlmMessageAliasing(t *testing.T) {
	b := sealOlm(testKey(1), 5, []byte("abc"), "MACMACMA")
	m, err := DecodeOlmMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if cap(m.Ciphertext) != len(m.Ciphertext) {
		t.Fatalf("ciphertext capacity %d exceeds its length %d", cap(m.Ciphertext), len(m.Ciphertext))
	}
	_ = append(m.Ciphertext, "XXXXXXXX"...)
	if string(b[len(b)-MACLength:]) != "MACMACMA" {
		t.Fatal("appending to the ciphertext overwrote the MAC")
	}
}

func TestOlmMessageAnyOrderAndUnknownFields(t *testing.T) {
	key, ct := testKey(9), []byte("ciphertext")
	k, i, c := olmKeyField(key), olmIndexField(16384), olmCTField(ct)
	unknown := [][]byte{
		appendVarintField(nil, 3, 77),             // unknown varint field
		appendBytesField(nil, 5, []byte("extra")), // unknown bytes field
		appendVarintField(nil, 16, 1),             // two-byte tag
		appendBytesField(nil, 1<<40, nil),         // very large field number
		appendVarintField(nil, 0, math.MaxUint64), // field 0, as libolm skips it
	}
	orders := [][][]byte{{k, i, c}, {k, c, i}, {i, k, c}, {i, c, k}, {c, k, i}, {c, i, k}}
	for oi, order := range orders {
		for ui, u := range unknown {
			for pos := 0; pos <= len(order); pos++ {
				fields := append(append(append([][]byte{}, order[:pos]...), u), order[pos:]...)
				b := olmBody(fields...)
				m, err := DecodeOlmMessage(b)
				if err != nil {
					t.Fatalf("order %d, unknown %d at %d: %v", oi, ui, pos, err)
				}
				if m.RatchetKey != *key || m.ChainIndex != 16384 || !bytes.Equal(m.Ciphertext, ct) || string(m.MAC[:]) != "MAC-8BYT" {
					t.Fatalf("order %d, unknown %d at %d: decoded %+v", oi, ui, pos, m)
				}
				// The MAC covers the bytes as sent, unknown fields included.
				if !bytes.Equal(m.Authenticated(), b[:len(b)-MACLength]) {
					t.Fatalf("order %d, unknown %d at %d: Authenticated() differs from the input", oi, ui, pos)
				}
			}
		}
	}
}

func TestOlmMessageRejects(t *testing.T) {
	key := testKey(3)
	k, i, c := olmKeyField(key), olmIndexField(1), olmCTField([]byte("ct"))
	valid := olmBody(k, i, c)
	withVersion := func(v byte) []byte { b := bytes.Clone(valid); b[0] = v; return b }
	cases := []struct {
		name string
		b    []byte
		why  string // a word of the expected reason
	}{
		{"version 0", withVersion(0), "version"},
		{"version 2", withVersion(2), "version"},
		{"version 4 (vodozemac)", withVersion(4), "version"},
		{"version 0x83", withVersion(0x83), "version"},
		{"empty", nil, "too short"},
		{"version only", []byte{Version}, "too short"},
		{"MAC only", olmBody(), "missing"},
		{"duplicate ratchet key", olmBody(k, i, c, k), "duplicate"},
		{"duplicate index", olmBody(k, i, i, c), "duplicate"},
		{"duplicate index, same", olmBody(k, olmIndexField(1), c, olmIndexField(1)), "duplicate"},
		{"duplicate ciphertext", olmBody(c, k, i, c), "duplicate"},
		{"key as varint", olmBody(appendVarintField(nil, olmRatchetKey, 1), i, c), "wire type"},
		{"index as bytes", olmBody(k, appendBytesField(nil, olmChainIndex, []byte{1}), c), "wire type"},
		{"ciphertext as varint", olmBody(k, i, appendVarintField(nil, olmCiphertext, 1)), "wire type"},
		{"index non-canonical", olmBody(k, []byte{0x10, 0x80, 0x00}, c), "non-canonical"},
		{"index 0x81 0x00", olmBody(k, []byte{0x10, 0x81, 0x00}, c), "non-canonical"},
		{"tag non-canonical", olmBody(k, []byte{0x90, 0x00, 0x01}, c), "non-canonical"},
		{"key length non-canon.", olmBody(cat([]byte{0x0a, 0xa0, 0x00}, key[:]), i, c), "non-canonical"},
		{"index over 64 bits", olmBody(k, unhex(t, "10ffffffffffffffffff02"), c), "64 bits"},
		{"index 2^32", olmBody(k, olmIndexField(1<<32), c), "32 bits"},
		{"index 2^64-1", olmBody(k, olmIndexField(math.MaxUint64), c), "32 bits"},
		{"key of 0 bytes", olmBody(appendBytesField(nil, olmRatchetKey, nil), i, c), "ratchet key is"},
		{"key of 31 bytes", olmBody(appendBytesField(nil, olmRatchetKey, key[:31]), i, c), "ratchet key is"},
		{"key of 33 bytes", olmBody(appendBytesField(nil, olmRatchetKey, append(key[:], 0)), i, c), "ratchet key is"},
		{"missing key", olmBody(i, c), "missing"},
		{"missing index", olmBody(k, c), "missing"},
		{"missing ciphertext", olmBody(k, i), "missing"},
		{"wire type 1", olmBody(k, i, c, unhex(t, "290000000000000000")), "wire type"},
		{"wire type 3", olmBody(k, i, c, []byte{0x2b}), "wire type"},
		{"wire type 5", olmBody(k, i, []byte{0x2d, 0, 0, 0, 0}, c), "wire type"},
		{"wire type 7", olmBody([]byte{0x0f}, k, i, c), "wire type"},
		{"length into the MAC", cat(valid[:len(valid)-MACLength-4], []byte{0x22, 0x03, 'c'}, []byte("MAC-8BYT")), "truncated"},
		{"unknown field cut", olmBody(k, i, c, []byte{0x2a, 0x05, 1, 2}), "truncated"},
		{"unknown varint cut", olmBody(k, i, c, []byte{0x28, 0x80}), "truncated"},
		{"trailing tag", olmBody(k, i, c, []byte{0x28}), "truncated"},
		{"stray byte before MAC", cat(valid[:len(valid)-MACLength], []byte{0x01}, []byte("MAC-8BYT")), "wire type"},
	}
	for _, c := range cases {
		m, err := DecodeOlmMessage(c.b)
		rejectDecodeFor(t, c.name, c.why, m, err)
	}
}

// TestOlmMessageTruncation cuts a valid message at every length: each prefix
// must be refused, since the ciphertext, the last field, is then cut or gone.
func TestOlmMessageTruncation(t *testing.T) {
	for _, index := range []uint32{0, 128, math.MaxUint32} {
		for _, n := range []int{0, 1, 16, 130} {
			b := sealOlm(testKey(7), index, testCiphertext(n), "MACBYTES")
			for l := range len(b) {
				m, err := DecodeOlmMessage(b[:l:l])
				rejectDecode(t, fmt.Sprintf("index %d, %d bytes, cut to %d", index, n, l), m, err)
			}
		}
	}
}

func TestOlmMessageCheckMAC(t *testing.T) {
	m, err := DecodeOlmMessage(sealOlm(testKey(5), 2, []byte("x"), "GOODMAC!"))
	if err != nil {
		t.Fatal(err)
	}
	if !m.CheckMAC([]byte("GOODMAC!")) {
		t.Fatal("the right MAC was refused")
	}
	for _, bad := range []string{"", "GOODMAC", "GOODMAC!!", "GOODMAC?", "goodmac!", "\x00\x00\x00\x00\x00\x00\x00\x00"} {
		if m.CheckMAC([]byte(bad)) {
			t.Errorf("CheckMAC(%q) = true", bad)
		}
	}
}

func BenchmarkDecodeOlmMessage(b *testing.B) {
	// A typical to-device payload: a few hundred bytes of ciphertext.
	msg := sealOlm(testKey(1), 1234, testCiphertext(400), "MACBYTES")
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeOlmMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
