package interop

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// olmEnd is one end of an Olm session, in xolm or in libolm. Messages cross
// as libolm's binding has them: a type and a base64 body.
type olmEnd interface {
	fmt.Stringer
	encrypt(plaintext string) olmMessage
	// decrypt returns the error of a failed decrypt; the end checks that the
	// failure left its session unchanged where it can see its state.
	decrypt(m olmMessage) (string, error)
	isBadMAC(err error) bool
}

// xolmSession is an end in xolm.
type xolmSession struct {
	t    *testing.T
	name string
	s    *olm.Session
}

func (x *xolmSession) String() string { return x.name }

func (x *xolmSession) encrypt(plaintext string) olmMessage {
	x.t.Helper()
	typ, body, err := x.s.Encrypt(rand.Reader, []byte(plaintext))
	if err != nil {
		x.t.Fatalf("%s: encrypt: %v", x, err)
	}
	return olmMessage{Type: int(typ), Body: b64.Encode(body)}
}

func (x *xolmSession) decrypt(m olmMessage) (string, error) {
	x.t.Helper()
	body, err := b64.Decode(m.Body)
	if err != nil {
		x.t.Fatal(err)
	}
	before := x.s.LibolmPickle(snapshotKey)
	plaintext, err := x.s.Decrypt(olm.MessageType(m.Type), body)
	if err != nil {
		if x.s.LibolmPickle(snapshotKey) != before {
			x.t.Fatalf("%s: a failed decrypt (%v) changed the session", x, err)
		}
		return "", err
	}
	return string(plaintext), nil
}

func (x *xolmSession) isBadMAC(err error) bool { return errors.Is(err, olm.ErrBadMAC) }

// libolmSession is an end in the libolm peer.
type libolmSession struct {
	l    *libolm
	h    string
	name string
}

func (s *libolmSession) String() string { return s.name }

func (s *libolmSession) encrypt(plaintext string) olmMessage {
	s.l.t.Helper()
	var m olmMessage
	s.l.call("session.encrypt", map[string]any{"session": s.h, "plaintext": plaintext}, &m)
	return m
}

func (s *libolmSession) decrypt(m olmMessage) (string, error) {
	var plaintext string
	err := s.l.p.Call("session.decrypt", map[string]any{"session": s.h, "type": m.Type, "body": m.Body}, &plaintext)
	return plaintext, err
}

func (s *libolmSession) isBadMAC(err error) bool { return isLibolmError(err, libolmBadMAC) }

func (s *libolmSession) id() string {
	s.l.t.Helper()
	return s.l.str("session.session_id", map[string]any{"session": s.h})
}

// receive decrypts m at to, which must give want.
func receive(t *testing.T, to olmEnd, m olmMessage, want string) {
	t.Helper()
	got, err := to.decrypt(m)
	if err != nil {
		t.Fatalf("%s decrypting %q: %v", to, want, err)
	}
	if got != want {
		t.Fatalf("%s decrypted %q, want %q", to, got, want)
	}
}

// rejects checks that to refuses m as a forgery.
func rejects(t *testing.T, to olmEnd, m olmMessage, what string) {
	t.Helper()
	_, err := to.decrypt(m)
	if !to.isBadMAC(err) {
		t.Fatalf("%s on %s: got %v, want a MAC failure", to, what, err)
	}
}

// tamper flips a bit in the last byte of a message body, inside its MAC.
func tamper(m olmMessage) olmMessage {
	b, _ := b64.Decode(m.Body)
	b[len(b)-1] ^= 0x01
	return olmMessage{Type: m.Type, Body: b64.Encode(b)}
}

// sentMessage is a message on its way, with its plaintext.
type sentMessage struct {
	to   olmEnd
	m    olmMessage
	text string
}

// converse runs rounds of normal messages between a, which started the
// session, and b, which has received it; b speaks first, and every round turns
// the ratchet over. Rounds send one to four messages and deliver them in
// order, reversed, or with one held back for two rounds (past two more
// turnovers). Delivered messages are replayed and tampered with now and then;
// both must be refused.
func converse(t *testing.T, a, b olmEnd, rounds int) {
	t.Helper()
	var held []sentMessage
	for round := range rounds {
		from, to := b, a
		if round%2 == 1 {
			from, to = a, b
		}
		sent := make([]sentMessage, 1+round%4)
		for i := range sent {
			text := fmt.Sprintf("round %d, message %d from %s", round, i, from)
			sent[i] = sentMessage{to: to, m: from.encrypt(text), text: text}
			if sent[i].m.Type != int(olm.MessageTypeNormal) {
				t.Fatalf("%s sent a message of type %d in round %d", from, sent[i].m.Type, round)
			}
		}
		switch {
		case round%3 == 1:
			for i := len(sent) - 1; i >= 0; i-- {
				receive(t, to, sent[i].m, sent[i].text)
			}
		case round%3 == 2 && len(sent) > 1:
			held = append(held, sent[0])
			for _, s := range sent[1:] {
				receive(t, to, s.m, s.text)
			}
		default:
			for _, s := range sent {
				receive(t, to, s.m, s.text)
			}
		}
		if round%5 == 0 {
			rejects(t, to, sent[len(sent)-1].m, "a replayed message")
			rejects(t, to, tamper(sent[0].m), "a tampered message")
		}
		if len(held) > 0 && round%3 == 1 {
			for _, s := range held {
				receive(t, s.to, s.m, s.text)
				rejects(t, s.to, s.m, "a replayed late message")
			}
			held = nil
		}
	}
	for _, s := range held {
		receive(t, s.to, s.m, s.text)
	}
}

// preKeyMessages sends n pre-key messages from s and returns them with their
// plaintexts.
func preKeyMessages(t *testing.T, s olmEnd, n int) ([]olmMessage, []string) {
	t.Helper()
	msgs := make([]olmMessage, n)
	texts := make([]string, n)
	for i := range msgs {
		texts[i] = fmt.Sprintf("pre-key message %d from %s, ünïcödé ☃", i, s)
		msgs[i] = s.encrypt(texts[i])
		if msgs[i].Type != int(olm.MessageTypePreKey) {
			t.Fatalf("%s's message %d before any reply has type %d", s, i, msgs[i].Type)
		}
	}
	return msgs, texts
}
