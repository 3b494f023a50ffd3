package machine

import (
	"context"
	"fmt"
	"time"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/keys"
	"github.com/xolm/xolm/machine/keyexport"
	"github.com/xolm/xolm/megolm"
)

// ExportRoomKeys writes the inbound group sessions that filter accepts (all
// when filter is nil) to a Matrix key-export file protected by passphrase
// (spec "Key exports"), which Element, matrix-rust-sdk and ImportRoomKeys
// read. rounds is the PBKDF2 round count (keyexport.DefaultRounds when 0, at
// most keyexport.MaxRounds).
//
// Each session is exported at its first known index with its sender key,
// claimed Ed25519 key and shared-history flag. The store keeps no forwarding
// chain, so forwarding_curve25519_key_chain is empty. The sessions are read
// in one read transaction; the slow key derivation runs after it, without
// the lease. The file is secret: it holds every exported room key.
func (m *Machine) ExportRoomKeys(ctx context.Context, passphrase string, rounds uint32, filter func(roomID, sessionID string) bool) ([]byte, error) {
	if rounds == 0 {
		rounds = keyexport.DefaultRounds
	}
	if rounds > keyexport.MaxRounds {
		return nil, fmt.Errorf("machine: export room keys: %w", &keyexport.LimitError{Limit: "rounds", Value: uint64(rounds), Max: keyexport.MaxRounds})
	}
	var sessions []keyexport.ExportedSession
	defer func() {
		for _, s := range sessions {
			clear(s.SessionKey)
		}
	}()
	err := m.store.View(ctx, "machine: export room keys", func(tx *cryptostore.Tx) error {
		sessions = sessions[:0]
		return tx.InboundGroupSessions(filter, func(rec *cryptostore.InboundGroupSessionRecord) error {
			s, err := exportSession(rec)
			if err != nil {
				return err
			}
			sessions = append(sessions, s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("machine: export room keys: %w", err)
	}
	plain, err := keyexport.MarshalSessions(sessions)
	if err != nil {
		return nil, fmt.Errorf("machine: export room keys: %w", err)
	}
	defer clear(plain)
	file, err := keyexport.Encrypt(plain, passphrase, rounds, m.rand)
	if err != nil {
		return nil, fmt.Errorf("machine: export room keys: %w", err)
	}
	return file, nil
}

// exportSession turns a stored session into its exported form.
func exportSession(rec *cryptostore.InboundGroupSessionRecord) (keyexport.ExportedSession, error) {
	sender, err := keys.ParseCurve25519PublicKey(rec.SenderKey)
	if err != nil {
		return keyexport.ExportedSession{}, fmt.Errorf("session %s: sender key: %w", rec.Session.ID(), err)
	}
	s := keyexport.ExportedSession{
		Algorithm:     keyexport.MegolmAlgorithm,
		RoomID:        rec.RoomID,
		SessionID:     rec.Session.ID(),
		SenderKey:     sender,
		SessionKey:    rec.Session.ExportAtFirstKnownIndex(),
		SharedHistory: rec.SharedHistory,
	}
	if rec.SigningKey != "" {
		if s.SenderClaimedKeys.Ed25519, err = keys.ParseEd25519PublicKey(rec.SigningKey); err != nil {
			return keyexport.ExportedSession{}, fmt.Errorf("session %s: claimed ed25519 key: %w", rec.Session.ID(), err)
		}
	}
	return s, nil
}

// ImportRoomKeys reads a Matrix key-export file protected by passphrase and
// stores its sessions as forwarded keys (an import vouches for nothing about
// their origin), keeping the better copy of each session already stored
// (DESIGN.md invariant 10). It returns how many sessions changed the store
// and how many the file holds.
//
// A wrong passphrase or an altered file is keyexport.ErrBadMAC, a file that
// holds no session list keyexport.ErrInvalidFile, a malformed session a
// *keyexport.SessionError. The import is all or nothing, in one transaction,
// taken only after the slow key derivation and the checks; the file's size
// (keyexport.MaxFileSize) bounds its sessions.
func (m *Machine) ImportRoomKeys(ctx context.Context, file []byte, passphrase string) (imported, total int, err error) {
	plain, err := keyexport.Decrypt(file, passphrase)
	if err != nil {
		return 0, 0, fmt.Errorf("machine: import room keys: %w", err)
	}
	sessions, err := keyexport.UnmarshalSessions(plain)
	clear(plain)
	if err != nil {
		return 0, 0, fmt.Errorf("machine: import room keys: %w", err)
	}
	defer func() {
		for _, s := range sessions {
			clear(s.SessionKey)
		}
	}()
	recs := make([]*cryptostore.InboundGroupSessionRecord, len(sessions))
	now := m.now()
	for i, s := range sessions {
		if recs[i], err = importedSession(s, now); err != nil {
			return 0, 0, fmt.Errorf("machine: import room keys: %w", &keyexport.SessionError{Index: i, Field: "session_key", Err: err})
		}
	}
	err = m.store.Update(ctx, "machine: import room keys", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		imported = 0
		for _, rec := range recs {
			changed, err := tx.PutInboundGroupSession(rec)
			if err != nil {
				return err
			}
			if changed {
				imported++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("machine: import room keys: %w", err)
	}
	return imported, len(sessions), nil
}

// importedSession turns an exported session into a record to store.
func importedSession(s keyexport.ExportedSession, now time.Time) (*cryptostore.InboundGroupSessionRecord, error) {
	sess, err := megolm.ImportInboundGroupSession(s.SessionKey)
	if err != nil {
		return nil, err
	}
	rec := &cryptostore.InboundGroupSessionRecord{
		RoomID:        s.RoomID,
		SenderKey:     s.SenderKey.String(),
		Session:       sess,
		Forwarded:     true,
		SharedHistory: s.SharedHistory,
		ImportedAt:    now,
	}
	if !s.SenderClaimedKeys.Ed25519.IsZero() {
		rec.SigningKey = s.SenderClaimedKeys.Ed25519.String()
	}
	return rec, nil
}
