package interop

import (
	"crypto/ed25519"
	"fmt"
	"testing"

	"github.com/xolm/xolm/internal/b64"
)

// groupMessages is how many messages the live Megolm tests send: past index
// 128, where the index's varint grows to two bytes.
const groupMessages = 131

// TestMegolmInterop shares Megolm sessions from xolm to libolm and from libolm
// to xolm.
func TestMegolmInterop(t *testing.T) {
	l := startLibolm(t)
	xolm, lib := xolmGroups{t}, libolmGroups{l}
	t.Run("xolm to libolm", func(t *testing.T) { megolmExchange(t, xolm, lib) })
	t.Run("libolm to xolm", func(t *testing.T) { megolmExchange(t, lib, xolm) })
}

// megolmExchange creates a session on the sender's side and shares it with
// the receiver's side, which decrypts in and out of order and refuses
// forgeries; exports at an index cross both ways.
func megolmExchange(t *testing.T, sender, receiver groupSide) {
	out := sender.newOutbound()
	key0 := out.sessionKey()
	bodies := make([]string, groupMessages)
	var key128 string
	for i := range bodies {
		if i == 128 {
			key128 = out.sessionKey()
		}
		bodies[i] = out.encrypt(groupText(i))
	}
	checkGroupSignatures(t, out.id(), bodies, 0, 127, 128, 130)

	in, err := receiver.newInbound(key0)
	if err != nil {
		t.Fatalf("%s refuses %s's session key: %v", receiver, sender, err)
	}
	if in.id() != out.id() {
		t.Fatalf("session ids: %s %s, %s %s", receiver, in.id(), sender, out.id())
	}
	for _, i := range []int{0, 1, 2, 3, 130, 128, 127, 64, 0, 129} {
		decryptsAt(t, in, bodies, i)
	}
	for _, offset := range []int{-1, -70, 10} {
		if _, _, err := in.decrypt(flipByte(t, bodies[4], offset)); !in.isForgery(err) {
			t.Fatalf("%s decrypting a message altered at byte %d: got %v, want a forgery", receiver, offset, err)
		}
	}
	if _, err := receiver.newInbound(flipByte(t, key0, -1)); !receiver.isBadSignature(err) {
		t.Fatalf("%s on a session key with a bad signature: got %v", receiver, err)
	}

	late, err := receiver.newInbound(key128)
	if err != nil {
		t.Fatal(err)
	}
	if late.firstKnownIndex() != 128 {
		t.Fatalf("%s: a session key from index 128 gives first known index %d", receiver, late.firstKnownIndex())
	}
	failsAtUnknownIndex(t, late, bodies, 127)
	decryptsAt(t, late, bodies, 128)

	// Exports at an index, from one implementation to the other and back;
	// both export the same bytes.
	mirror, err := sender.newInbound(key0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range []struct {
		from, to        groupSide
		exporter, other groupIn // the same session, on the from and to sides
		index           uint32
	}{
		{receiver, sender, in, mirror, 5},
		{sender, receiver, mirror, in, 7},
	} {
		exported, err := pair.exporter.export(pair.index)
		if err != nil {
			t.Fatalf("%s export at %d: %v", pair.from, pair.index, err)
		}
		if same, err := pair.other.export(pair.index); err != nil || same != exported {
			t.Fatalf("exports at %d differ: %s %s, %s %s (%v)", pair.index, pair.from, exported, pair.to, same, err)
		}
		imported, err := pair.to.importInbound(exported)
		if err != nil {
			t.Fatalf("%s refuses %s's export: %v", pair.to, pair.from, err)
		}
		if imported.firstKnownIndex() != pair.index || imported.id() != out.id() {
			t.Fatalf("%s imported %s's export at %d as %s from %d", pair.to, pair.from, pair.index, imported.id(), imported.firstKnownIndex())
		}
		failsAtUnknownIndex(t, imported, bodies, int(pair.index)-1)
		if _, err := imported.export(pair.index - 1); !imported.isUnknownExport(err) {
			t.Fatalf("%s exported below its first known index: %v", pair.to, err)
		}
		for _, i := range []int{int(pair.index), 130, int(pair.index) + 1} {
			decryptsAt(t, imported, bodies, i)
		}
	}
}

func groupText(i int) string { return fmt.Sprintf("group message %d, ünïcödé ☃", i) }

func decryptsAt(t *testing.T, in groupIn, bodies []string, i int) {
	t.Helper()
	plaintext, index, err := in.decrypt(bodies[i])
	if err != nil {
		t.Fatalf("decrypting message %d: %v", i, err)
	}
	if plaintext != groupText(i) || index != uint32(i) {
		t.Fatalf("message %d decrypted to %q at index %d", i, plaintext, index)
	}
}

func failsAtUnknownIndex(t *testing.T, in groupIn, bodies []string, i int) {
	t.Helper()
	if _, _, err := in.decrypt(bodies[i]); !in.isUnknownIndex(err) {
		t.Fatalf("decrypting message %d below the first known index %d: got %v", i, in.firstKnownIndex(), err)
	}
}

// checkGroupSignatures verifies, with the standard library, that the given
// messages carry an Ed25519 signature of everything before it by the session
// key (the session ID).
func checkGroupSignatures(t *testing.T, sessionID string, bodies []string, indices ...int) {
	t.Helper()
	key, err := b64.Decode(sessionID)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range indices {
		body, err := b64.Decode(bodies[i])
		if err != nil {
			t.Fatal(err)
		}
		signed, sig := body[:len(body)-ed25519.SignatureSize], body[len(body)-ed25519.SignatureSize:]
		if !ed25519.Verify(ed25519.PublicKey(key), signed, sig) {
			t.Fatalf("message %d is not signed by the session key", i)
		}
	}
}

// flipByte flips the low bit of one byte of base64 data (counted from the end
// when offset is negative).
func flipByte(t *testing.T, s string, offset int) string {
	t.Helper()
	b, err := b64.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if offset < 0 {
		offset += len(b)
	}
	b[offset] ^= 0x01
	return b64.Encode(b)
}
