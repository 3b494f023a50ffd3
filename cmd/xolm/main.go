// Command xolm works with xolm crypto stores.
//
// Usage:
//
//	xolm demo [FLAGS]    run an app and a notification-extension process on one store
//	xolm inspect STORE   print a store's schema version, lease state and row counts
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// command is one subcommand of xolm.
type command struct {
	name, args, help string
	run              func(ctx context.Context, stdout io.Writer, args []string) error
}

// A command without help is not listed in the usage text.
var commands = []command{
	{"demo", "[FLAGS]", "an app and a notification-extension process decrypting from a peer on one store, with a tally", runDemo},
	{"demo-device", "FLAGS", "", runDemoDevice}, // one process of the demo
	{"inspect", "STORE", "print a store's schema version, lease state and row counts (read-only, no key needed)", runInspect},
}

// errUsage asks main to print the usage text.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(context.Background(), os.Stdout, os.Stderr, os.Args[1:]))
}

func run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	if len(args) > 0 {
		for _, c := range commands {
			if c.name == args[0] {
				err := c.run(ctx, stdout, args[1:])
				if err == nil {
					return 0
				}
				if errors.Is(err, errUsage) {
					fmt.Fprintf(stderr, "usage: xolm %s %s\n", c.name, c.args)
					return 2
				}
				fmt.Fprintf(stderr, "xolm %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintln(stderr, "usage: xolm COMMAND [ARGS]")
	for _, c := range commands {
		if c.help == "" {
			continue
		}
		fmt.Fprintf(stderr, "  %-8s %-8s %s\n", c.name, c.args, c.help)
	}
	return 2
}
