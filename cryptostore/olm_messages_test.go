package cryptostore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/xolm/xolm/olm"
)

// A chain's messages get hashes that sort by chain index, next to each
// other; different messages, types and senders get different hashes; a body
// that does not parse still gets one.
func TestOlmMessageHashGroupsAChain(t *testing.T) {
	mine, _, sender := sessionPair(t)
	var prev [32]byte
	for i := range 5 {
		typ, body, err := mine.Encrypt(rand.Reader, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		h := OlmMessageHash(sender, int(typ), body)
		if string(h[:4]) != sender[:4] {
			t.Fatalf("hash %x does not start with the sender", h)
		}
		if got := binary.BigEndian.Uint32(h[8:12]); got != uint32(i) {
			t.Fatalf("message %d: chain index %d in the hash", i, got)
		}
		if i > 0 && (!bytes.Equal(h[:8], prev[:8]) || bytes.Compare(prev[:], h[:]) >= 0) {
			t.Fatalf("message %d: %x does not follow %x in its chain", i, h, prev)
		}
		if h == OlmMessageHash(sender, 1-int(typ), body) || h == OlmMessageHash("x"+sender, int(typ), body) {
			t.Fatal("type or sender not bound into the hash")
		}
		if OlmMessageHash(sender, int(typ), body) != h {
			t.Fatal("hash not deterministic")
		}
		prev = h
	}
	junk := OlmMessageHash(sender, int(olm.MessageTypeNormal), []byte("not a message"))
	if !bytes.Equal(junk[4:12], make([]byte, 8)) || junk == OlmMessageHash(sender, 1, []byte("not a message!")) {
		t.Fatalf("unparsable body: %x", junk)
	}
}

// The batch forms agree with the single ones, across chunk boundaries and
// with a hash given twice.
func TestOlmMessagesBatch(t *testing.T) {
	s, _ := tempStore(t)
	hash := func(i int) [32]byte {
		var h [32]byte
		binary.BigEndian.PutUint32(h[:], uint32(i))
		h[31] = 0xaa
		return h
	}
	// Record every third of 0..299 (more than one chunk of 128), some twice.
	var msgs []OlmMessage
	for i := 0; i < 300; i += 3 {
		msgs = append(msgs, OlmMessage{Hash: hash(i), SenderKey: "sender"})
	}
	msgs = append(msgs, msgs[0], msgs[7])
	added := func(msgs []OlmMessage) (n int) {
		t.Helper()
		update(t, s, func(tx *Tx) (err error) {
			n, err = tx.AddOlmMessages(msgs)
			return err
		})
		return n
	}
	if n := added(msgs); n != len(msgs)-2 {
		t.Fatalf("%d of %d hashes (two given twice) reported new", n, len(msgs))
	}
	if n := added(nil); n != 0 {
		t.Fatalf("no hashes: %d reported new", n)
	}
	if n := added(append(msgs[3:5:5], OlmMessage{Hash: hash(1000), SenderKey: "sender"})); n != 1 {
		t.Fatalf("two recorded hashes and a new one: %d reported new", n)
	}

	for _, n := range []int{0, 1, 2, 9, 33, 128, 129, 300} {
		var hashes [][32]byte
		for i := range n {
			hashes = append(hashes, hash(i))
		}
		s.View(context.Background(), "check", func(tx *Tx) error {
			seen, err := tx.SeenOlmMessages(hashes)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, h := range hashes {
				one, err := tx.SeenOlmMessage(h)
				if err != nil {
					t.Fatal(err)
				}
				if seen[h] != one {
					t.Fatalf("n=%d: %x seen %t in the batch, %t alone", n, h, seen[h], one)
				}
				if one {
					want++
				}
			}
			if len(seen) != want {
				t.Fatalf("n=%d: %d seen, want %d", n, len(seen), want)
			}
			return nil
		})
	}
	err := s.View(context.Background(), "read only", func(tx *Tx) error {
		_, err := tx.AddOlmMessages(msgs[:1])
		return err
	})
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("AddOlmMessages in a View: %v", err)
	}
}
