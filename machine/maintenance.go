package machine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/xolm/xolm/cryptostore"
)

// Maintenance: the store keeps a hash of every Olm message it decrypted, to
// tell a second copy from a wedged session (DESIGN.md invariant 7). Copies
// come within a sync or two, or from the other process on the same store,
// so hashes older than OlmMessageHashRetention are forgotten, by a task
// that runs at most once per MaintenanceInterval between all processes on
// the store.
const (
	// OlmMessageHashRetention is how long a decrypted message's hash is
	// kept. A copy of a message older than this is no longer recognized as
	// a duplicate: it fails to decrypt and may start unwedging (at most once
	// an hour per device).
	OlmMessageHashRetention = 30 * 24 * time.Hour
	// MaintenanceInterval is how often the maintenance tasks run.
	MaintenanceInterval = 24 * time.Hour
	// MaxPrunedPerMaintenance bounds the hashes one run forgets, and so the
	// length of its transaction; a run that reaches it is not recorded as
	// complete, and the next check goes on.
	MaxPrunedPerMaintenance = 10_000
	// MaintenanceFirstCheckAfter is how long a machine runs before
	// ReceiveSyncChanges first looks at the schedule, and
	// maintenanceCheckEvery how often it looks after that. A short-lived
	// process (a notification extension) never runs the tasks on its own.
	MaintenanceFirstCheckAfter = 10 * time.Minute
	maintenanceCheckEvery      = time.Hour
)

// taskPruneOlmMessages names the pruning task in the store's schedule.
const taskPruneOlmMessages = "prune olm message hashes"

// maintenanceClock is when ReceiveSyncChanges next looks at the schedule.
type maintenanceClock struct {
	mu   sync.Mutex
	next time.Time // guarded by mu
}

// due reports whether now is past the next check, and if so moves it on.
func (c *maintenanceClock) due(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.next) {
		return false
	}
	c.next = now.Add(maintenanceCheckEvery)
	return true
}

// MaintenanceReport says what one Maintain call did.
type MaintenanceReport struct {
	// Ran is false when the tasks ran less than MaintenanceInterval ago.
	Ran bool
	// OlmMessageHashesPruned counts the hashes forgotten.
	OlmMessageHashesPruned int64
}

// Maintain runs the store's maintenance tasks if they are due: it forgets
// Olm message hashes older than OlmMessageHashRetention. When they are not
// due it costs one read. ReceiveSyncChanges calls it on its own, at most
// hourly, in a machine that has run for MaintenanceFirstCheckAfter; an app
// may also call it when idle or on its way to the background.
func (m *Machine) Maintain(ctx context.Context) (MaintenanceReport, error) {
	var due bool
	err := m.store.View(ctx, "machine: maintenance schedule", func(tx *cryptostore.Tx) error {
		var err error
		due, err = m.maintenanceDue(tx)
		return err
	})
	if err != nil || !due {
		return MaintenanceReport{}, wrapMaintenance(err)
	}
	var rep MaintenanceReport
	err = m.store.Update(ctx, "machine: maintenance", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		rep = MaintenanceReport{}
		if due, err := m.maintenanceDue(tx); err != nil || !due { // another process may just have run it
			return err
		}
		n, err := tx.PruneOlmMessages(OlmMessageHashRetention, MaxPrunedPerMaintenance)
		if err != nil {
			return err
		}
		rep = MaintenanceReport{Ran: true, OlmMessageHashesPruned: n}
		if n == MaxPrunedPerMaintenance {
			return nil // more to do at the next check
		}
		return tx.SetLastRun(taskPruneOlmMessages)
	})
	if err != nil {
		return MaintenanceReport{}, wrapMaintenance(err)
	}
	if rep.Ran {
		m.log.Info().Int64("pruned", rep.OlmMessageHashesPruned).Msg("maintenance ran")
	}
	return rep, nil
}

func (m *Machine) maintenanceDue(tx *cryptostore.Tx) (bool, error) {
	last, err := tx.LastRun(taskPruneOlmMessages)
	if err != nil {
		return false, err
	}
	return m.now().Sub(last) >= MaintenanceInterval, nil
}

func wrapMaintenance(err error) error {
	if err != nil {
		return fmt.Errorf("machine: maintenance: %w", err)
	}
	return nil
}

// maintainIfDue runs Maintain from ReceiveSyncChanges when the machine's
// check is due. A failure is logged, not returned: the sync it follows
// succeeded, and the next check tries again.
func (m *Machine) maintainIfDue(ctx context.Context) {
	if !m.maintenance.due(m.now()) {
		return
	}
	if _, err := m.Maintain(ctx); err != nil {
		m.log.Warn().Err(err).Msg("maintenance failed")
	}
}
