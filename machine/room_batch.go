package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/wire"
)

// Decrypting a timeline page: the batch parses its events first, looks up
// which event used each of their Megolm message indexes in one statement,
// checks its events against that as they decrypt (DESIGN.md invariant 8),
// and records the new uses in one statement when it commits.

// DecryptedRoomEventResult is one event's outcome in DecryptRoomEvents:
// Event, or Err (one of the errors DecryptRoomEvent documents).
type DecryptedRoomEventResult struct {
	Event *DecryptedRoomEvent
	Err   error
}

// DecryptRoomEvents decrypts a batch of events received in roomID (a timeline
// page) as DecryptRoomEvent does each, in one transaction: one result per
// event, in order. An event that fails has its error in its result and
// changes nothing; the returned error is for the batch as a whole (a store
// failure, or more than MaxRoomEventsPerBatch events), and then nothing
// changed.
func (m *Machine) DecryptRoomEvents(ctx context.Context, roomID string, events []json.RawMessage) ([]DecryptedRoomEventResult, error) {
	if len(events) > MaxRoomEventsPerBatch {
		return nil, fmt.Errorf("%w: %d events, at most %d", ErrRoomBatchTooLarge, len(events), MaxRoomEventsPerBatch)
	}
	results := make([]DecryptedRoomEventResult, len(events))
	err := m.store.Update(ctx, "machine: decrypt room events", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		clear(results)
		b := m.newRoomBatch(ctx, tx, roomID)
		in, err := b.prepare(events)
		if err != nil {
			return err
		}
		for i, ev := range in {
			d, err := b.decrypt(ev)
			if f, ok := err.(*storeFailure); ok {
				return f.err
			}
			results[i] = DecryptedRoomEventResult{Event: d, Err: err}
		}
		return b.commit()
	})
	if err != nil {
		return nil, fmt.Errorf("machine: decrypt room events: %w", err)
	}
	return results, nil
}

// roomEventIn is an event of the batch as parsed before decryption: its
// envelope and Megolm message, or why it cannot be decrypted.
type roomEventIn struct {
	env        *roomEnvelope
	ciphertext []byte
	err        error
}

// prepare parses the batch's events and looks up, in one statement, the
// recorded uses of the message indexes their messages carry. (The index is
// read before it is authenticated: an altered one fails to decrypt.)
func (b *roomBatch) prepare(events []json.RawMessage) ([]*roomEventIn, error) {
	in := make([]*roomEventIn, len(events))
	var indexes []cryptostore.MegolmIndex
	for i, event := range events {
		env, ciphertext, err := parseRoomEvent(b.roomID, event)
		in[i] = &roomEventIn{env: env, ciphertext: ciphertext, err: err}
		if err != nil {
			continue
		}
		if msg, err := wire.DecodeMegolmMessage(ciphertext); err == nil {
			indexes = append(indexes, cryptostore.MegolmIndex{SessionID: env.Content.SessionID, Index: msg.Index})
		}
	}
	return in, b.lookUpUses(indexes)
}

// lookUpUses records in b.uses the recorded use of each of indexes, or that
// it has none. Its error is the store's.
func (b *roomBatch) lookUpUses(indexes []cryptostore.MegolmIndex) error {
	found, err := b.tx.MegolmIndexUses(indexes)
	if err != nil {
		return err
	}
	if b.uses == nil {
		b.uses = make(map[cryptostore.MegolmIndex]indexUse, len(indexes))
		b.newUses = make([]cryptostore.MegolmIndexUse, 0, len(indexes))
	}
	for _, ix := range indexes {
		first, used := found[ix]
		b.uses[ix] = indexUse{used: used, first: first}
	}
	return nil
}

// recordUse records that the event used the index, in the batch; the same
// index used by another event is a replay (DESIGN.md invariant 8).
func (b *roomBatch) recordUse(use cryptostore.MegolmIndexUse) error {
	known, ok := b.uses[use.MegolmIndex]
	switch {
	case !ok:
		// Not looked up (DecryptRoomEvent's one event): one statement
		// records the use and finds a replay.
		err := b.tx.RecordMegolmIndex(use.SessionID, use.Index, use.EventID, use.OriginTS)
		if err != nil && !errors.Is(err, cryptostore.ErrReplay) {
			return &storeFailure{err}
		}
		if err == nil && b.uses != nil {
			b.uses[use.MegolmIndex] = indexUse{used: true, first: use} // recorded: not one for commit
		}
		return err
	case known.used && known.first.EventID != use.EventID:
		return &cryptostore.ReplayError{SessionID: use.SessionID, Index: use.Index,
			FirstEvent: known.first.EventID, FirstTS: known.first.OriginTS}
	case known.used:
		return nil // the same event again
	}
	b.uses[use.MegolmIndex] = indexUse{used: true, first: use}
	b.newUses = append(b.newUses, use)
	return nil
}
