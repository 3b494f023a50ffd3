package interop

import (
	"fmt"
	"io"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/olm"
)

// olmMessage is an Olm message as libolm's binding returns it.
type olmMessage struct {
	Type int    `json:"type"`
	Body string `json:"body"`
}

// inboundResult is the result of the session.create_inbound step: the new
// session's ID and the plaintext of the pre-key message that created it.
type inboundResult struct {
	SessionID string `json:"session_id"`
	Plaintext string `json:"plaintext"`
}

func (r *replayer) account(name string) *olm.Account {
	r.t.Helper()
	a := r.accounts[name]
	if a == nil {
		r.t.Fatalf("transcript uses account %q before creating it", name)
	}
	return a
}

func (r *replayer) session(name string) *olm.Session {
	r.t.Helper()
	s := r.sessions[name]
	if s == nil {
		r.t.Fatalf("transcript uses session %q before creating it", name)
	}
	return s
}

func (r *replayer) curveKey(s string) olm.Curve25519PublicKey {
	r.t.Helper()
	k, err := olm.ParseCurve25519PublicKey(s)
	if err != nil {
		r.t.Fatalf("transcript holds an invalid key %q: %v", s, err)
	}
	return k
}

// preKeyMessage parses a pre-key message body; a malformed one is an error
// of the step, as libolm would report it.
func (r *replayer) preKeyMessage(body string) (*olm.PreKeyMessage, error) {
	return olm.ParsePreKeyMessage(r.unb64(body))
}

// olmOps replay the Olm steps of tests/node/record.cjs.
var olmOps = map[string]opFunc{
	"account.create": func(r *replayer, a *stepArgs, rand io.Reader) (any, error) {
		acc, err := olm.NewAccount(rand)
		if err != nil {
			return nil, err
		}
		r.accounts[a.Account] = acc
		return nil, nil
	},
	"account.unpickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		acc, err := olm.ImportLibolmAccount(a.Pickle, r.pickleKey(a))
		if err != nil {
			return nil, err
		}
		r.accounts[a.Account] = acc
		return nil, nil
	},
	"account.pickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		key := r.pickleKey(a)
		p := r.account(a.Account).LibolmPickle(key)
		imported, err := olm.ImportLibolmAccount(p, key)
		if err != nil {
			return nil, fmt.Errorf("import of the pickle: %w", err)
		}
		if again := imported.LibolmPickle(key); again != p {
			return nil, fmt.Errorf("an imported account pickles differently:\n%s\n%s", again, p)
		}
		return p, nil
	},
	"account.identity_keys": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return string(r.account(a.Account).IdentityKeysJSON()), nil
	},
	"account.generate_one_time_keys": func(r *replayer, a *stepArgs, rand io.Reader) (any, error) {
		return nil, r.account(a.Account).GenerateOneTimeKeys(rand, a.Count)
	},
	"account.one_time_keys": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return string(r.account(a.Account).OneTimeKeysJSON()), nil
	},
	"account.mark_keys_as_published": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		r.account(a.Account).MarkKeysAsPublished()
		return nil, nil
	},
	"account.generate_fallback_key": func(r *replayer, a *stepArgs, rand io.Reader) (any, error) {
		return nil, r.account(a.Account).GenerateFallbackKey(rand)
	},
	"account.fallback_key": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return string(r.account(a.Account).FallbackKeyJSON()), nil
	},
	"account.unpublished_fallback_key": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return string(r.account(a.Account).UnpublishedFallbackKeyJSON()), nil
	},
	"account.forget_old_fallback_key": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		r.account(a.Account).ForgetOldFallbackKey()
		return nil, nil
	},
	"account.sign": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return b64.Encode(r.account(a.Account).Sign([]byte(a.Message))), nil
	},

	"session.create_outbound": func(r *replayer, a *stepArgs, rand io.Reader) (any, error) {
		s, err := r.account(a.Account).NewOutboundSession(rand, r.curveKey(a.IdentityKey), r.curveKey(a.OneTimeKey))
		if err != nil {
			return nil, err
		}
		r.sessions[a.Session] = s
		return s.ID(), nil
	},
	// libolm's client removes the one-time key after creating the session
	// (remove_one_time_key); xolm's NewInboundSession removes it itself and
	// keeps fallback keys. The account pickles later in the transcript show
	// that both end with the same keys.
	"session.create_inbound": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		msg, err := r.preKeyMessage(a.Body)
		if err != nil {
			return nil, err
		}
		s, plaintext, err := r.account(a.Account).NewInboundSession(nil, msg)
		if err != nil {
			return nil, err
		}
		if !s.MatchesInboundSession(nil, msg) {
			return nil, fmt.Errorf("the new session does not match the message that created it")
		}
		r.sessions[a.Session] = s
		return inboundResult{SessionID: s.ID(), Plaintext: string(plaintext)}, nil
	},
	"session.unpickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		s, err := olm.ImportLibolmSession(a.Pickle, r.pickleKey(a))
		if err != nil {
			return nil, err
		}
		r.sessions[a.Session] = s
		return nil, nil
	},
	"session.pickle": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		key := r.pickleKey(a)
		p := r.session(a.Session).LibolmPickle(key)
		imported, err := olm.ImportLibolmSession(p, key)
		if err != nil {
			return nil, fmt.Errorf("import of the pickle: %w", err)
		}
		if again := imported.LibolmPickle(key); again != p {
			return nil, fmt.Errorf("an imported session pickles differently:\n%s\n%s", again, p)
		}
		return p, nil
	},
	"session.session_id": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return r.session(a.Session).ID(), nil
	},
	"session.has_received_message": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		return r.session(a.Session).HasReceivedMessage(), nil
	},
	"session.matches_inbound": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		msg, err := r.preKeyMessage(a.Body)
		if err != nil {
			return nil, err
		}
		return r.session(a.Session).MatchesInboundSession(nil, msg), nil
	},
	"session.encrypt": func(r *replayer, a *stepArgs, rand io.Reader) (any, error) {
		typ, body, err := r.session(a.Session).Encrypt(rand, []byte(a.Plaintext))
		if err != nil {
			return nil, err
		}
		return olmMessage{Type: int(typ), Body: b64.Encode(body)}, nil
	},
	"session.decrypt": func(r *replayer, a *stepArgs, _ io.Reader) (any, error) {
		plaintext, err := r.session(a.Session).Decrypt(olm.MessageType(a.Type), r.unb64(a.Body))
		if err != nil {
			return nil, err
		}
		return string(plaintext), nil
	},
}
