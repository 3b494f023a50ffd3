package interop

import (
	"fmt"
	"io"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/megolm"
)

// groupPlaintext is a decrypted Megolm message as libolm's binding returns it.
type groupPlaintext struct {
	Plaintext    string `json:"plaintext"`
	MessageIndex uint32 `json:"message_index"`
}

func (r *replayer) outboundGroup(name string) *megolm.OutboundGroupSession {
	r.t.Helper()
	s := r.outbound[name]
	if s == nil {
		r.t.Fatalf("transcript uses outbound group session %q before creating it", name)
	}
	return s
}

func (r *replayer) inboundGroup(name string) *megolm.InboundGroupSession {
	r.t.Helper()
	s := r.inbound[name]
	if s == nil {
		r.t.Fatalf("transcript uses inbound group session %q before creating it", name)
	}
	return s
}

// megolmOps replay the Megolm steps of tests/node/record.cjs.
var megolmOps = map[string]opFunc{
	"outbound_group.create": func(r *replayer, a *stepArgs, rand io.Reader) (any, error) {
		s, err := megolm.NewOutboundGroupSession(rand)
		if err != nil {
			return nil, err
		}
		r.outbound[a.Session] = s
		return nil, nil
	},
	"outbound_group.unpickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		s, err := megolm.ImportLibolmOutboundGroupSession(a.Pickle, r.pickleKey(a))
		if err != nil {
			return nil, err
		}
		r.outbound[a.Session] = s
		return nil, nil
	},
	"outbound_group.pickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		key := r.pickleKey(a)
		p := r.outboundGroup(a.Session).LibolmPickle(key)
		imported, err := megolm.ImportLibolmOutboundGroupSession(p, key)
		if err != nil {
			return nil, fmt.Errorf("import of the pickle: %w", err)
		}
		if again := imported.LibolmPickle(key); again != p {
			return nil, fmt.Errorf("an imported outbound session pickles differently:\n%s\n%s", again, p)
		}
		return p, nil
	},
	"outbound_group.session_id": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return r.outboundGroup(a.Session).ID(), nil
	},
	"outbound_group.session_key": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return b64.Encode(r.outboundGroup(a.Session).SessionKey()), nil
	},
	"outbound_group.message_index": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return r.outboundGroup(a.Session).MessageIndex(), nil
	},
	"outbound_group.encrypt": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		body, err := r.outboundGroup(a.Session).Encrypt([]byte(a.Plaintext))
		if err != nil {
			return nil, err
		}
		return b64.Encode(body), nil
	},

	"inbound_group.create": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		s, err := megolm.NewInboundGroupSession(r.unb64(a.SessionKey))
		if err != nil {
			return nil, err
		}
		r.inbound[a.Session] = s
		return nil, nil
	},
	"inbound_group.import_session": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		s, err := megolm.ImportInboundGroupSession(r.unb64(a.SessionKey))
		if err != nil {
			return nil, err
		}
		r.inbound[a.Session] = s
		return nil, nil
	},
	"inbound_group.unpickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		s, err := megolm.ImportLibolmInboundGroupSession(a.Pickle, r.pickleKey(a))
		if err != nil {
			return nil, err
		}
		r.inbound[a.Session] = s
		return nil, nil
	},
	"inbound_group.pickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		key := r.pickleKey(a)
		p := r.inboundGroup(a.Session).LibolmPickle(key)
		imported, err := megolm.ImportLibolmInboundGroupSession(p, key)
		if err != nil {
			return nil, fmt.Errorf("import of the pickle: %w", err)
		}
		if again := imported.LibolmPickle(key); again != p {
			return nil, fmt.Errorf("an imported inbound session pickles differently:\n%s\n%s", again, p)
		}
		return p, nil
	},
	"inbound_group.session_id": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return r.inboundGroup(a.Session).ID(), nil
	},
	"inbound_group.first_known_index": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return r.inboundGroup(a.Session).FirstKnownIndex(), nil
	},
	"inbound_group.export_session": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		exported, err := r.inboundGroup(a.Session).Export(a.MessageIndex)
		if err != nil {
			return nil, err
		}
		return b64.Encode(exported), nil
	},
	"inbound_group.decrypt": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		plaintext, index, err := r.inboundGroup(a.Session).Decrypt(r.unb64(a.Body))
		if err != nil {
			return nil, err
		}
		return groupPlaintext{Plaintext: string(plaintext), MessageIndex: index}, nil
	},
}
