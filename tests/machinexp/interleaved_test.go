package machinexp_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

const (
	// interleavedMessages is how many to-device messages Bob sends Alice in
	// the interleaved test, every other one to each of her processes.
	interleavedMessages = 100
	// replyEvery: after every this many messages, one of Alice's processes
	// sends Bob a message, so that his next ones start a new chain.
	replyEvery = 4
)

// interleaving is what became of an interleaved run. It stops at the first
// message that did not decrypt, or the first request to recover from one.
type interleaving struct {
	decrypted, preKey, normal int
	replies                   int // Alice's messages that Bob decrypted
	failure                   string
	reason                    string // the failed message's deviceline reason
}

// The sequence of matrix-rust-sdk issue 3110, with real processes: Bob's
// to-device messages (m.room_key shares, each on his Olm session with Alice)
// go in turn to Alice's app and to her notification extension, two
// processes on one store: the app decrypts one, the extension the next, the
// app the one after, and so on. Bob's first messages are pre-key messages;
// every few messages one of Alice's processes sends Bob a room key of her
// own, which turns the Olm ratchet over, and Bob's next messages are normal
// messages on a new chain that only the session as the other process left
// it can decrypt. Every message decrypts, none is reported wedged, and no
// request to recover from a wedged session (a key claim, an m.dummy) ever
// appears in either process's outgoing requests.
//
// With InsecureSkipCacheInvalidation, each process decrypts with the
// session it last cached instead of the one the other process stored, and
// the first message after a turnover that reaches the process that did not
// see the turnover fails to decrypt: the wedge the store prevents, which
// shows this test can fail.
func TestInterleavedProcessesDecryptEveryMessage(t *testing.T) {
	t.Run("invalidating", func(t *testing.T) {
		got := runInterleaved(t, false)
		if got.failure != "" {
			t.Fatal(got.failure)
		}
		if got.decrypted != interleavedMessages || got.replies != interleavedMessages/replyEvery {
			t.Fatalf("%d of %d messages decrypted, %d replies", got.decrypted, interleavedMessages, got.replies)
		}
		if got.preKey < 3 || got.normal < interleavedMessages/2 {
			t.Fatalf("%d pre-key and %d normal messages", got.preKey, got.normal)
		}
	})
	t.Run("InsecureSkipCacheInvalidation", func(t *testing.T) {
		got := runInterleaved(t, true)
		if got.failure == "" {
			t.Fatal("with cache invalidation skipped every message decrypted: the test cannot fail")
		}
		if got.reason != deviceline.ReasonWedged {
			t.Fatalf("with cache invalidation skipped: %s", got.failure)
		}
		t.Logf("as expected without invalidation: %s", got.failure)
	})
}

func runInterleaved(t *testing.T, skipInvalidation bool) interleaving {
	t.Helper()
	hs := newHomeserver(t)
	a := startAlice(t, hs, skipInvalidation)
	bob := newPeer(t, hs, "@bob:example.org", "BOB")
	bob.connect(t)
	mustCall(t, a.app, deviceline.Request{Op: deviceline.OpTrack, Users: []string{bob.UserID()}})
	hs.flushProc(a.app)

	procs := []*deviceline.Proc{a.app, a.nse}
	var out interleaving
	for i := range interleavedMessages {
		ev := bob.sendRoomKey(t, fmt.Sprintf("!bob%d:example.org", i))
		if olmType(t, ev, a.app.Curve25519) == int(olm.MessageTypePreKey) {
			out.preKey++
		} else {
			out.normal++
		}
		p := procs[i%2]
		res := mustCall(t, p, deviceline.Request{Op: deviceline.OpSync, Events: []json.RawMessage{ev},
			OneTimeKeyCounts: hs.OneTimeKeyCounts(alice, aliceDevice)}).Results
		if len(res) != 1 || !decrypted(res[0]) {
			out.failure = fmt.Sprintf("message %d (after %d pre-key, %d normal) to the %s process: %+v", i, out.preKey, out.normal, p.Role, res)
			if len(res) == 1 {
				out.reason = res[0].Reason
			}
			return out
		}
		out.decrypted++

		if i%replyEvery == replyEvery-2 {
			replier := procs[i/replyEvery%2]
			room := fmt.Sprintf("!alice%d:example.org", i)
			r, err := replier.Call(deviceline.Request{Op: deviceline.OpShare, Room: room, Users: []string{bob.UserID()}}, within)
			if err != nil {
				t.Fatal(err)
			}
			if !r.OK || len(r.Requests) != 1 {
				out.failure = fmt.Sprintf("the %s process shares %s: %d requests, %s", replier.Role, room, len(r.Requests), r.Err)
				return out
			}
			hs.send(replier, r.Requests[0])
			if n, err := bob.receive(t); err != nil || n != 1 {
				out.failure = fmt.Sprintf("Bob receives %s from the %s process: %d events, %v", room, replier.Role, n, err)
				return out
			}
			out.replies++
		}
		for _, p := range procs {
			if u := unwedging(hs.flushProc(p)); len(u) > 0 {
				out.failure = fmt.Sprintf("after message %d the %s process sent %s", i, p.Role, describe(u))
				return out
			}
		}
	}
	return out
}
