package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/xolm/xolm/internal/gobuild"
)

// The demo with real processes, both ways: with cache invalidation every
// message decrypts, duplicates are reported as such and the lease changes
// hands; without it the table shows the stale-session failures (the proof
// that the first table is not luck).
func TestDemo(t *testing.T) {
	bin, err := gobuild.Binary(t.TempDir(), "github.com/xolm/xolm/cmd/xolm", "xolm")
	if err != nil {
		t.Fatal(err)
	}
	const messages = 30
	run := func(t *testing.T, insecure bool) (*demoTally, string) {
		var out bytes.Buffer
		tally, err := demo(context.Background(), &out, demoConfig{messages: messages, insecure: insecure, bin: bin})
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		t.Log("\n" + out.String())
		return tally, out.String()
	}

	t.Run("invalidating", func(t *testing.T) {
		tally, out := run(t, false)
		olm := tableRow(t, out, "Olm to-device, Bob → Alice")
		room := tableRow(t, out, "Megolm room events, Bob → Alice")
		answers := tableRow(t, out, "Olm and Megolm, Alice → Bob")
		// Bob rotates every demoBobRotation messages: one room key each time.
		if olm["sent"] != messages/demoBobRotation || room["sent"] != messages {
			t.Errorf("sent %d Olm and %d Megolm messages, want %d and %d", olm["sent"], room["sent"], messages/demoBobRotation, messages)
		}
		if olm["undecryptable"] != 0 || room["undecryptable"] != 0 || answers["undecryptable"] != 0 || tally.wedged != 0 {
			t.Errorf("failures with invalidation on: %d Olm, %d Megolm, %d answers undecryptable, %d wedged",
				olm["undecryptable"], room["undecryptable"], answers["undecryptable"], tally.wedged)
		}
		// Every Olm message decrypted exactly once, by one process or the
		// other; in Background the other process saw a duplicate.
		if olm["by app"]+olm["by nse"] != olm["sent"] || olm["by app"] == 0 || olm["by nse"] == 0 {
			t.Errorf("Olm messages decrypted by app %d and nse %d, sent %d", olm["by app"], olm["by nse"], olm["sent"])
		}
		if olm["duplicate"] == 0 || olm["duplicate"] != tally.duplicates {
			t.Errorf("duplicates: table %d, tally %d; the background phase hands both processes a batch", olm["duplicate"], tally.duplicates)
		}
		if room["by app"] == 0 || room["by nse"] == 0 || answers["sent"] == 0 || answers["by Bob"] != answers["sent"] {
			t.Errorf("room events by app %d, nse %d; answers %d, by Bob %d", room["by app"], room["by nse"], answers["sent"], answers["by Bob"])
		}
		if tally.generationTo-tally.generationFrom <= 0 || !strings.Contains(out, "lease handovers     "+
			strconv.FormatInt(tally.generationTo-tally.generationFrom, 10)) {
			t.Errorf("lease handovers: generation %d → %d", tally.generationFrom, tally.generationTo)
		}
		if !strings.Contains(out, "verdict: no undecryptable message, no wedged session") {
			t.Error("no success verdict")
		}
	})

	t.Run("InsecureSkipCacheInvalidation", func(t *testing.T) {
		tally, out := run(t, true)
		olm := tableRow(t, out, "Olm to-device, Bob → Alice")
		room := tableRow(t, out, "Megolm room events, Bob → Alice")
		if tally.wedged == 0 || olm["undecryptable"] == 0 || room["undecryptable"] == 0 {
			t.Errorf("stale caches made no failure: %d wedged, %d Olm and %d Megolm undecryptable",
				tally.wedged, olm["undecryptable"], room["undecryptable"])
		}
		if !tally.failed() || !strings.Contains(out, "verdict: with cache invalidation off") || !strings.Contains(out, "first failures:") {
			t.Error("the verdict does not blame the missing invalidation")
		}
	})
}

// tableRow returns the numbers of the demo table's row label, by column.
func tableRow(t *testing.T, out, label string) map[string]int {
	t.Helper()
	columns := []string{"sent", "by app", "by nse", "by Bob", "duplicate", "undecryptable"}
	for line := range strings.Lines(out) {
		rest, ok := strings.CutPrefix(line, label)
		if !ok {
			continue
		}
		cells := strings.Fields(rest)
		if len(cells) != len(columns) {
			t.Fatalf("row %q has %d cells", line, len(cells))
		}
		row := map[string]int{}
		for i, c := range cells {
			if c != "-" {
				n, err := strconv.Atoi(c)
				if err != nil {
					t.Fatalf("row %q: %v", line, err)
				}
				row[columns[i]] = n
			}
		}
		return row
	}
	t.Fatalf("no row %q in\n%s", label, out)
	return nil
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{{"demo", "-messages", "0"}, {"demo", "-messages", "1000000"}, {"demo", "extra"}, {"demo-device"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), &out, &errOut, args); code != 2 {
			t.Errorf("%q: exit %d: %s", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	run(context.Background(), &out, &errOut, nil)
	if !strings.Contains(errOut.String(), "demo ") || strings.Contains(errOut.String(), "demo-device") {
		t.Errorf("the usage text lists demo and hides demo-device:\n%s", errOut.String())
	}
}
