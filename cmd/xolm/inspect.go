package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/xolm/xolm/cryptostore"
)

func runInspect(ctx context.Context, stdout io.Writer, args []string) error {
	if len(args) != 1 {
		return errUsage
	}
	r, err := cryptostore.Inspect(ctx, args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "store          %s\n", r.Path)
	fmt.Fprintf(stdout, "schema         version %d\n", r.SchemaVersion)
	lease := "never taken"
	switch {
	case r.Lease.Holder != "" && r.Lease.ExpiresAt.IsZero():
		lease = fmt.Sprintf("released by %s", r.Lease.Holder)
	case r.Lease.Holder != "" && r.Lease.ExpiresAt.Before(time.Now()):
		lease = fmt.Sprintf("expired, last held by %s", r.Lease.Holder)
	case r.Lease.Holder != "":
		lease = fmt.Sprintf("held by %s until %s", r.Lease.Holder, r.Lease.ExpiresAt.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(stdout, "lease          %s (generation %d, %d writes)\n", lease, r.Lease.Generation, r.Lease.DataStamp)
	for _, table := range cryptostore.InspectTables() {
		if n, ok := r.Rows[table]; ok {
			fmt.Fprintf(stdout, "%-32s %d\n", table, n)
		}
	}
	return nil
}
