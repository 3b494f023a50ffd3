package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine"
)

// demoMaxMessages bounds -messages: about 5 ms of work each, so a
// minute at most.
const demoMaxMessages = 10_000

// demoStaleFrom is the first message (counting from 1) that a stale cache
// fails to decrypt in the scenario: the notification extension meets the
// ratchet the app turned over after the extension last decrypted.
const demoStaleFrom = demoRound + demoActiveEnd + 2

// demoConfig is one run of the demo.
type demoConfig struct {
	messages int
	insecure bool   // open Alice's store with InsecureSkipCacheInvalidation
	bin      string // the xolm binary to start Alice's processes from
}

// errDemoFailed reports messages that did not decrypt although the store
// invalidated its caches: a bug the demo exists to rule out.
var errDemoFailed = errors.New("messages failed to decrypt with cache invalidation on")

func runDemo(ctx context.Context, stdout io.Writer, args []string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stdout)
	messages := fs.Int("messages", 200, fmt.Sprintf("room messages the peer sends (1 to %d)", demoMaxMessages))
	insecure := fs.Bool("insecure-skip-cache-invalidation", false,
		"let both processes keep cached sessions across each other's changes, to show the failures that prevents")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil || fs.NArg() != 0 || *messages < 1 || *messages > demoMaxMessages {
		return errUsage
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	t, err := demo(ctx, stdout, demoConfig{messages: *messages, insecure: *insecure, bin: bin})
	if err != nil {
		return err
	}
	if t.failed() && !*insecure {
		return errDemoFailed
	}
	return nil
}

// demo runs the scenario (demo_scenario.go) in a temporary directory: Bob's
// machine and the homeserver in this process, Alice's app and notification
// extension as two processes of cfg.bin on one store file. It prints the
// tally and returns it.
func demo(ctx context.Context, stdout io.Writer, cfg demoConfig) (*demoTally, error) {
	dir, err := os.MkdirTemp("", "xolm-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var aliceKey, bobKey [32]byte
	rand.Read(aliceKey[:])
	rand.Read(bobKey[:])
	defer clear(aliceKey[:])
	alicePath := filepath.Join(dir, "alice.db")

	bobStore, err := cryptostore.Open(ctx, filepath.Join(dir, "bob.db"), cryptostore.Options{Key: &bobKey, Role: "peer"})
	if err != nil {
		return nil, err
	}
	defer bobStore.Close()
	bob, err := machine.Open(ctx, bobStore, demoBob, demoBobDevice, machine.Options{})
	if err != nil {
		return nil, err
	}

	// One after the other: the app creates the store and the account.
	var procs [2]*deviceProcess
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.close()
			}
		}
	}()
	for i, role := range roleNames {
		if procs[i], err = startDeviceProcess(ctx, cfg.bin, role, alicePath, &aliceKey, cfg.insecure); err != nil {
			return nil, err
		}
	}

	t := &demoTally{messages: cfg.messages}
	s := &demoScenario{hs: newDemoHomeserver(), bob: &deviceMachine{m: bob}, procs: [2]demoDevice{procs[0], procs[1]}, tally: t}
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	if t.generationFrom, err = leaseGeneration(ctx, alicePath); err != nil {
		return nil, err
	}
	for k := range cfg.messages {
		if err := s.message(ctx, k); err != nil {
			return nil, err
		}
	}
	for i, p := range procs {
		procs[i] = nil
		if err := p.close(); err != nil {
			return nil, err
		}
	}
	if t.generationTo, err = leaseGeneration(ctx, alicePath); err != nil {
		return nil, err
	}
	t.olmSent = s.hs.sent[deviceName(demoAlice, demoAliceDevice)]
	t.answersSent += s.hs.sent[deviceName(demoBob, demoBobDevice)]
	t.reusedKeyIDs = s.hs.reusedKeyIDs
	printDemo(stdout, cfg, alicePath, t)
	return t, nil
}

// leaseGeneration reads the store's lease generation, which goes up each
// time the lease passes from one process to the other.
func leaseGeneration(ctx context.Context, path string) (int64, error) {
	r, err := cryptostore.Inspect(ctx, path)
	if err != nil {
		return 0, err
	}
	return r.Lease.Generation, nil
}

// printDemo writes the table and the verdict.
func printDemo(w io.Writer, cfg demoConfig, path string, t *demoTally) {
	invalidation := "on"
	if cfg.insecure {
		invalidation = "OFF (-insecure-skip-cache-invalidation)"
	}
	fmt.Fprintf(w, "xolm demo: Bob (%s) sends %d room messages to Alice (%s).\n", demoBob, t.messages, demoAlice)
	fmt.Fprintf(w, "Alice's app and notification extension (nse) are two processes on one store file,\n")
	fmt.Fprintf(w, "%s (removed at exit). Cache invalidation %s.\n", path, invalidation)
	fmt.Fprintf(w, "Every %d messages the app is active for %d, in the background for %d, suspended for %d.\n\n",
		demoRound, demoActiveEnd, demoBackground-demoActiveEnd, demoRound-demoBackground)
	row := func(what string, cells ...any) {
		fmt.Fprintf(w, "%-32s%6v%8v%8v%8v%11v%15v\n", append([]any{what}, cells...)...)
	}
	row("", "sent", "by app", "by nse", "by Bob", "duplicate", "undecryptable")
	row("Olm to-device, Bob → Alice", t.olmSent, t.olmDecrypted[0], t.olmDecrypted[1], "-", t.duplicates, t.olmUndecryptable)
	row("Megolm room events, Bob → Alice", t.megolmSent, t.megolmDecrypted[0], t.megolmDecrypted[1], "-", "-", t.megolmFailed)
	row("Olm and Megolm, Alice → Bob", t.answersSent, "-", "-", t.answersDecrypted, "-", t.answersFailed)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "wedged sessions     %d (messages no Olm session decrypted; new sessions claimed: %d)\n", t.wedged, t.unwedging)
	fmt.Fprintf(w, "lease handovers     %d (lease generation %d → %d)\n", t.generationTo-t.generationFrom, t.generationFrom, t.generationTo)
	fmt.Fprintf(w, "app phase changes   %d\n", t.phaseChanges)
	if t.reusedKeyIDs > 0 {
		fmt.Fprintf(w, "one-time key IDs    %d uploaded again with another key\n", t.reusedKeyIDs)
	}
	fmt.Fprintln(w)

	undecryptable := t.olmUndecryptable + t.megolmFailed + t.answersFailed
	var what []string
	if undecryptable > 0 || t.wedged > 0 {
		what = append(what, fmt.Sprintf("%d undecryptable messages, %d of them to-device messages of a wedged Olm session (matrix-rust-sdk #3110)", undecryptable, t.wedged))
	}
	if t.reusedKeyIDs > 0 {
		what = append(what, fmt.Sprintf("%d one-time key IDs reused for other keys (matrix-rust-sdk #1415)", t.reusedKeyIDs))
	}
	switch {
	case len(what) == 0 && cfg.insecure:
		fmt.Fprintln(w, "verdict: no failure yet, although cache invalidation was off: with this scenario the first")
		fmt.Fprintf(w, "stale session is met at message %d\n", demoStaleFrom)
	case len(what) == 0:
		fmt.Fprintln(w, "verdict: no undecryptable message, no wedged session: each process read what the other had changed")
	case cfg.insecure:
		fmt.Fprintln(w, "verdict: with cache invalidation off, each process went on from state it had cached")
		fmt.Fprintf(w, "while the other moved it on:\n  %s\n", strings.Join(what, "\n  "))
		fmt.Fprintln(w, "Run without -insecure-skip-cache-invalidation to see none of this.")
	default:
		fmt.Fprintf(w, "verdict: FAILED with cache invalidation on:\n  %s\n", strings.Join(what, "\n  "))
	}
	if len(t.failures) > 0 {
		fmt.Fprintln(w, "\nfirst failures:")
		for _, f := range t.failures {
			fmt.Fprintf(w, "  %s\n", f)
		}
		if t.failuresLeft > 0 {
			fmt.Fprintf(w, "  and %d more\n", t.failuresLeft)
		}
	}
}
