package interop

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
)

// groupSide makes Megolm sessions in xolm or in libolm. Keys, messages and
// exports cross as unpadded base64, as Matrix carries them.
type groupSide interface {
	String() string
	newOutbound() groupOut
	// newInbound and importInbound return the side's error for a key it
	// refuses.
	newInbound(sessionKey string) (groupIn, error)
	importInbound(exported string) (groupIn, error)
	isBadSignature(err error) bool // a session key whose signature fails
}

type groupOut interface {
	id() string
	sessionKey() string
	encrypt(plaintext string) string
}

type groupIn interface {
	id() string
	firstKnownIndex() uint32
	// decrypt returns the error of a failed decrypt; xolm's sessions check
	// that the failure left them unchanged.
	decrypt(body string) (string, uint32, error)
	export(index uint32) (string, error)
	isForgery(err error) bool
	isUnknownIndex(err error) bool
	isUnknownExport(err error) bool // an export below the first known index
}

// xolmGroups is the xolm side.
type xolmGroups struct{ t *testing.T }

func (xolmGroups) String() string { return "xolm" }

func (x xolmGroups) newOutbound() groupOut {
	x.t.Helper()
	s, err := megolm.NewOutboundGroupSession(rand.Reader)
	if err != nil {
		x.t.Fatal(err)
	}
	return xolmOutGroup{t: x.t, s: s}
}

func (x xolmGroups) newInbound(sessionKey string) (groupIn, error) {
	s, err := megolm.NewInboundGroupSession(x.decode(sessionKey))
	if err != nil {
		return nil, err
	}
	return xolmInGroup{t: x.t, s: s}, nil
}

func (x xolmGroups) importInbound(exported string) (groupIn, error) {
	s, err := megolm.ImportInboundGroupSession(x.decode(exported))
	if err != nil {
		return nil, err
	}
	return xolmInGroup{t: x.t, s: s}, nil
}

func (xolmGroups) isBadSignature(err error) bool { return errors.Is(err, megolm.ErrBadSignature) }

func (x xolmGroups) decode(s string) []byte {
	x.t.Helper()
	b, err := b64.Decode(s)
	if err != nil {
		x.t.Fatal(err)
	}
	return b
}

type xolmOutGroup struct {
	t *testing.T
	s *megolm.OutboundGroupSession
}

func (x xolmOutGroup) id() string         { return x.s.ID() }
func (x xolmOutGroup) sessionKey() string { return b64.Encode(x.s.SessionKey()) }

func (x xolmOutGroup) encrypt(plaintext string) string {
	x.t.Helper()
	body, err := x.s.Encrypt([]byte(plaintext))
	if err != nil {
		x.t.Fatal(err)
	}
	return b64.Encode(body)
}

type xolmInGroup struct {
	t *testing.T
	s *megolm.InboundGroupSession
}

func (x xolmInGroup) id() string              { return x.s.ID() }
func (x xolmInGroup) firstKnownIndex() uint32 { return x.s.FirstKnownIndex() }

func (x xolmInGroup) decrypt(body string) (string, uint32, error) {
	x.t.Helper()
	before := x.s.LibolmPickle(snapshotKey)
	plaintext, index, err := x.s.Decrypt(xolmGroups{x.t}.decode(body))
	if err != nil {
		if x.s.LibolmPickle(snapshotKey) != before {
			x.t.Fatalf("a failed decrypt (%v) changed the inbound group session", err)
		}
		return "", 0, err
	}
	if !x.s.SigningKeyVerified() {
		x.t.Fatal("an inbound group session that decrypted a message is not verified")
	}
	return string(plaintext), index, nil
}

func (x xolmInGroup) export(index uint32) (string, error) {
	exported, err := x.s.Export(index)
	if err != nil {
		return "", err
	}
	return b64.Encode(exported), nil
}

func (xolmInGroup) isForgery(err error) bool { return errors.Is(err, megolm.ErrBadMAC) }
func (xolmInGroup) isUnknownIndex(err error) bool {
	return errors.Is(err, megolm.ErrUnknownMessageIndex)
}
func (xolmInGroup) isUnknownExport(err error) bool {
	return errors.Is(err, megolm.ErrUnknownMessageIndex)
}

// libolmGroups is the libolm side, in the peer.
type libolmGroups struct{ l *libolm }

func (libolmGroups) String() string { return "libolm" }

func (g libolmGroups) newOutbound() groupOut {
	g.l.t.Helper()
	return libolmOutGroup{l: g.l, h: g.l.handle("outbound_group.create", nil)}
}

func (g libolmGroups) newInbound(sessionKey string) (groupIn, error) {
	var h string
	if err := g.l.p.Call("inbound_group.create", map[string]any{"session_key": sessionKey}, &h); err != nil {
		return nil, err
	}
	return libolmInGroup{l: g.l, h: h}, nil
}

func (g libolmGroups) importInbound(exported string) (groupIn, error) {
	var h string
	if err := g.l.p.Call("inbound_group.import_session", map[string]any{"session_key": exported}, &h); err != nil {
		return nil, err
	}
	return libolmInGroup{l: g.l, h: h}, nil
}

func (libolmGroups) isBadSignature(err error) bool { return isLibolmError(err, libolmBadSignature) }

type libolmOutGroup struct {
	l *libolm
	h string
}

func (g libolmOutGroup) id() string {
	return g.l.str("outbound_group.session_id", map[string]any{"session": g.h})
}

func (g libolmOutGroup) sessionKey() string {
	return g.l.str("outbound_group.session_key", map[string]any{"session": g.h})
}

func (g libolmOutGroup) encrypt(plaintext string) string {
	return g.l.str("outbound_group.encrypt", map[string]any{"session": g.h, "plaintext": plaintext})
}

type libolmInGroup struct {
	l *libolm
	h string
}

func (g libolmInGroup) id() string {
	return g.l.str("inbound_group.session_id", map[string]any{"session": g.h})
}

func (g libolmInGroup) firstKnownIndex() uint32 {
	var i uint32
	g.l.call("inbound_group.first_known_index", map[string]any{"session": g.h}, &i)
	return i
}

func (g libolmInGroup) decrypt(body string) (string, uint32, error) {
	var got groupPlaintext
	err := g.l.p.Call("inbound_group.decrypt", map[string]any{"session": g.h, "body": body}, &got)
	return got.Plaintext, got.MessageIndex, err
}

func (g libolmInGroup) export(index uint32) (string, error) {
	var exported string
	err := g.l.p.Call("inbound_group.export_session", map[string]any{"session": g.h, "message_index": index}, &exported)
	return exported, err
}

func (libolmInGroup) isForgery(err error) bool      { return isLibolmError(err, libolmBadSignature) }
func (libolmInGroup) isUnknownIndex(err error) bool { return isLibolmError(err, libolmUnknownIndex) }

// isUnknownExport: libolm's export below the first known index fails
// without naming a reason.
func (libolmInGroup) isUnknownExport(err error) bool { return isLibolmError(err, "OLM.UNKNOWN_ERROR") }
