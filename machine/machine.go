package machine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/olm"
)

// Algorithm names of the Matrix specification.
const (
	OlmAlgorithm    = "m.olm.v1.curve25519-aes-sha2"
	MegolmAlgorithm = "m.megolm.v1.aes-sha2"
)

// Options configure [Open].
type Options struct {
	// Rand is the source of randomness; crypto/rand if nil.
	Rand io.Reader
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// Logger receives structured logs; silent by default.
	Logger zerolog.Logger
}

// Machine is one device's crypto state machine over a store. It is safe for
// concurrent use; steps are serialized by the store's transactions, also
// across processes.
type Machine struct {
	store               *cryptostore.Store // constant
	userID              string             // constant
	deviceID            string             // constant
	ids                 olm.IdentityKeys   // constant
	curve25519, ed25519 string             // ids as Matrix writes them; constant
	rand                io.Reader          // constant
	now                 func() time.Time   // constant
	log                 zerolog.Logger     // constant

	maintenance maintenanceClock // when ReceiveSyncChanges next looks at the schedule
}

// ErrWrongAccount reports a store that belongs to another user or device.
var ErrWrongAccount = errors.New("machine: the store belongs to another account")

// Open opens the machine for userID's device deviceID over store, creating
// the device's Olm account on first use.
func Open(ctx context.Context, store *cryptostore.Store, userID, deviceID string, opts Options) (*Machine, error) {
	if userID == "" || deviceID == "" {
		return nil, errors.New("machine: user and device IDs are required")
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Machine{store: store, userID: userID, deviceID: deviceID, rand: opts.Rand, now: opts.Now,
		log: opts.Logger.With().Str("device", deviceID).Logger()}
	m.maintenance.next = opts.Now().Add(MaintenanceFirstCheckAfter)
	err := store.Update(ctx, "machine: open", cryptostore.Synced, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if errors.Is(err, cryptostore.ErrNotFound) {
			acct, err := olm.NewAccount(m.rand)
			if err != nil {
				return err
			}
			rec = &cryptostore.AccountRecord{UserID: userID, DeviceID: deviceID, Account: acct}
			if err := tx.PutAccount(rec); err != nil {
				return err
			}
			m.log.Info().Str("curve25519", acct.IdentityKeys().Curve25519.String()).Msg("account created")
		} else if err != nil {
			return err
		}
		if rec.UserID != userID || rec.DeviceID != deviceID {
			return fmt.Errorf("%w: %s %s", ErrWrongAccount, rec.UserID, rec.DeviceID)
		}
		m.setIdentity(rec.Account.IdentityKeys())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("machine: open: %w", err)
	}
	return m, nil
}

// setIdentity sets the device's identity keys, and the strings Matrix
// writes them as.
func (m *Machine) setIdentity(ids olm.IdentityKeys) {
	m.ids = ids
	m.curve25519, m.ed25519 = ids.Curve25519.String(), ids.Ed25519.String()
}

// UserID returns the machine's user.
func (m *Machine) UserID() string { return m.userID }

// DeviceID returns the machine's device.
func (m *Machine) DeviceID() string { return m.deviceID }

// IdentityKeys returns the device's Curve25519 and Ed25519 identity keys.
func (m *Machine) IdentityKeys() olm.IdentityKeys { return m.ids }

// Store returns the store the machine runs over, for its phases
// (Store().Process().SetPhase) and for holding the lease across calls.
func (m *Machine) Store() *cryptostore.Store { return m.store }
