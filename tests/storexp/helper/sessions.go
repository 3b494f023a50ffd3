package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/olm"
	"github.com/xolm/xolm/tests/storexp/storeproc"
)

// state is the session as a deterministic byte string, for comparisons.
func state(s *olm.Session) string { return s.LibolmPickle(storeproc.StateKey) }

func (h *helper) putSession(ctx context.Context, req storeproc.Request) (storeproc.Reply, error) {
	sess, err := olm.UnpickleSession(req.Session, &h.key, nil)
	if err != nil {
		return storeproc.Reply{}, err
	}
	now := time.Now()
	err = h.store.Update(ctx, "put session", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		return tx.PutOlmSession(&cryptostore.OlmSessionRecord{
			SenderKey: req.Sender, Session: sess, CreatedAt: now, LastUsedAt: now,
		})
	})
	return storeproc.Reply{After: state(sess), SessionID: sess.ID()}, err
}

// viewSession reads the sender's newest session in a read transaction, which
// leaves it in the cache.
func (h *helper) viewSession(ctx context.Context, req storeproc.Request) (storeproc.Reply, error) {
	var r storeproc.Reply
	err := h.store.View(ctx, "view session", func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(req.Sender)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return cryptostore.ErrNotFound
		}
		r.Before, r.SessionID = state(recs[0].Session), recs[0].Session.ID()
		return nil
	})
	return r, err
}

func (h *helper) viewAccount(ctx context.Context) (storeproc.Reply, error) {
	var r storeproc.Reply
	err := h.store.View(ctx, "view account", func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		r.Keys = len(rec.Account.AllOneTimeKeys())
		return nil
	})
	return r, err
}

// decrypt is one receive step: read the sender's sessions, decrypt with the
// first that can, commit the advanced session with the message hash. Before
// is the newest session as read, whatever the outcome.
func (h *helper) decrypt(ctx context.Context, req storeproc.Request) (storeproc.Reply, error) {
	var r storeproc.Reply
	err := h.store.Update(ctx, "decrypt", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(req.Sender)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return cryptostore.ErrNotFound
		}
		r.Before = state(recs[0].Session)
		var first error
		for _, rec := range recs {
			pt, err := rec.Session.Decrypt(olm.MessageType(req.Type), req.Body)
			if err != nil {
				first = cmp.Or(first, err)
				continue
			}
			rec.LastUsedAt = time.Now()
			if err := tx.PutOlmSession(rec); err != nil {
				return err
			}
			if err := tx.AddOlmMessage(cryptostore.OlmMessageHash(req.Sender, req.Type, req.Body), req.Sender); err != nil {
				return err
			}
			r.Plaintext, r.After, r.SessionID = string(pt), state(rec.Session), rec.Session.ID()
			return nil
		}
		return first
	})
	return r, err
}

// encrypt is one send step, committed Synced before the ciphertext is
// returned (persist before send).
func (h *helper) encrypt(ctx context.Context, req storeproc.Request) (storeproc.Reply, error) {
	var r storeproc.Reply
	err := h.store.Update(ctx, "encrypt", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		recs, err := tx.OlmSessions(req.Sender)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return cryptostore.ErrNotFound
		}
		rec := recs[0]
		r.Before = state(rec.Session)
		typ, body, err := rec.Session.Encrypt(rand.Reader, []byte(req.Plaintext))
		if err != nil {
			return err
		}
		rec.LastUsedAt = time.Now()
		if err := tx.PutOlmSession(rec); err != nil {
			return err
		}
		r.Type, r.Body, r.After, r.SessionID = int(typ), body, state(rec.Session), rec.Session.ID()
		return nil
	})
	return r, err
}

// preKey receives a pre-key message in one transaction: a message already
// decrypted is a duplicate; one for a session the store holds is decrypted
// with it (unless Naive); otherwise the account (a copy) creates the
// session, and the one-time key row is removed and the session stored in
// the same transaction.
func (h *helper) preKey(ctx context.Context, req storeproc.Request) (storeproc.Reply, error) {
	var r storeproc.Reply
	pre, err := olm.ParsePreKeyMessage(req.Body)
	if err != nil {
		return r, err
	}
	theirKey, err := olm.ParseCurve25519PublicKey(req.Sender)
	if err != nil {
		return r, err
	}
	hash := cryptostore.OlmMessageHash(req.Sender, int(olm.MessageTypePreKey), req.Body)
	err = h.store.Update(ctx, "pre-key message", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		r = storeproc.Reply{}
		if seen, err := tx.SeenOlmMessage(hash); err != nil || seen {
			r.Outcome = storeproc.Duplicate
			return err
		}
		now := time.Now()
		commit := func(rec *cryptostore.OlmSessionRecord, pt []byte) error {
			if err := tx.PutOlmSession(rec); err != nil {
				return err
			}
			r.Plaintext, r.SessionID, r.After = string(pt), rec.Session.ID(), state(rec.Session)
			return tx.AddOlmMessage(hash, req.Sender)
		}
		if !req.Naive {
			recs, err := tx.OlmSessions(req.Sender)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				if !rec.Session.MatchesInboundSession(&theirKey, pre) {
					continue
				}
				pt, err := rec.Session.Decrypt(olm.MessageTypePreKey, req.Body)
				if err != nil {
					return fmt.Errorf("matching session: %w", err)
				}
				rec.LastUsedAt = now
				r.Outcome = storeproc.Matched
				return commit(rec, pt)
			}
		}
		acct, err := tx.Account()
		if err != nil {
			return err
		}
		sess, pt, err := acct.Account.NewInboundSession(&theirKey, pre)
		if err != nil {
			return err
		}
		removed, err := tx.RemoveOneTimeKey(pre.OneTimeKey().String())
		if err != nil {
			return err
		}
		if !removed {
			return errKeyRowGone
		}
		r.Outcome = storeproc.Created
		return commit(&cryptostore.OlmSessionRecord{SenderKey: req.Sender, Session: sess, CreatedAt: now, LastUsedAt: now}, pt)
	})
	if err != nil {
		r.Outcome = ""
	}
	return r, err
}
