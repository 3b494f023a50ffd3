package xprocess_test

import (
	"context"
	"log"

	"github.com/rs/zerolog"

	"github.com/xolm/xolm/internal/sqlitedb"
	"github.com/xolm/xolm/xprocess"
)

// One operation of a store: admitted by the phase, run under the lease,
// writing through a fenced transaction.
func Example() {
	ctx := context.Background()
	db, err := sqlitedb.Open(ctx, "store.db", sqlitedb.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	p, err := xprocess.New(db, xprocess.Options{Role: "nse", Logger: zerolog.Nop()})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	exit, err := p.Enter(ctx, xprocess.Essential)
	if err != nil {
		return // suspended: try again when the app resumes
	}
	defer exit()
	lease, err := p.Acquire(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release()
	if lease.Changed() {
		// Another process may have written: drop every cache before reading.
	}
	err = db.Write(lease.Context(), "store a session", sqlitedb.Synced, func(tx *sqlitedb.Tx) error {
		if err := lease.Fence(tx); err != nil {
			return err // ErrLeaseLost: roll back and drop cached state
		}
		// ... the writes of one protocol step ...
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
