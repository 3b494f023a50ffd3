// Command nseproc is a notification extension's whole life, for the cold
// start benchmark in bench/coldstart: it opens a store, opens the machine
// (taking the lease), decrypts one to-device event and one room event, prints
// one JSON line and exits.
//
// The store key is read from standard input as one line of hex, never from
// the command line. The events come from a JSON file:
//
//	{"to_device": <event>, "room_id": "...", "room_event": <event>}
//
// With -baseline it reads the key, prints its line and exits without touching
// the store: the cost of starting this binary at all.
//
// The line is {"outcome": "ok"|"error", "error": "...", "to_device_type",
// "room_event_type", "vm_hwm_kib", "work_ms"}; vm_hwm_kib is the process's
// peak resident set from /proc/self/status (0 where there is none).
package main

import (
	"bufio"
	"context"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine"
)

// events is the input file's shape.
type events struct {
	ToDevice  json.RawMessage `json:"to_device"`
	RoomID    string          `json:"room_id"`
	RoomEvent json.RawMessage `json:"room_event"`
}

// report is the one line printed.
type report struct {
	Outcome       string  `json:"outcome"`
	Error         string  `json:"error,omitempty"`
	ToDeviceType  string  `json:"to_device_type,omitempty"`
	RoomEventType string  `json:"room_event_type,omitempty"`
	VmHWMKiB      int64   `json:"vm_hwm_kib"`
	WorkMS        float64 `json:"work_ms"`
	// PhasesMS is the time of each step: open_store, open_machine,
	// to_device, room_event, release_lease, close (the file: SQLite
	// checkpoints the WAL as its last connection closes).
	PhasesMS map[string]float64 `json:"phases_ms,omitempty"`
}

// phases times consecutive steps.
type phases struct {
	last time.Time
	ms   map[string]float64
}

func (p *phases) done(step string) {
	now := time.Now()
	p.ms[step] = float64(now.Sub(p.last).Microseconds()) / 1000
	p.last = now
}

func main() {
	storePath := flag.String("store", "", "store file")
	eventsPath := flag.String("events", "", "JSON file with the events to decrypt")
	user := flag.String("user", "", "the store's user ID")
	device := flag.String("device", "", "the store's device ID")
	baseline := flag.Bool("baseline", false, "start and exit without opening the store")
	cacheKiB := flag.Int("sqlite-cache-kib", 0, "SQLite page cache per connection in KiB (0: SQLite's default)")
	flag.Parse()

	start := time.Now()
	r := run(*storePath, *eventsPath, *user, *device, *baseline, *cacheKiB)
	r.WorkMS = float64(time.Since(start).Microseconds()) / 1000
	r.VmHWMKiB = peakRSSKiB()
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	if r.Outcome != "ok" {
		os.Exit(1)
	}
}

func run(storePath, eventsPath, user, device string, baseline bool, cacheKiB int) report {
	key, err := readKey()
	if err != nil {
		return failed(err)
	}
	if baseline {
		return report{Outcome: "ok"}
	}
	if cacheKiB > 0 {
		setPageCache(cacheKiB)
	}
	raw, err := os.ReadFile(eventsPath)
	if err != nil {
		return failed(err)
	}
	var ev events
	if err := json.Unmarshal(raw, &ev); err != nil {
		return failed(fmt.Errorf("events file: %w", err))
	}
	ctx := context.Background()
	ph := &phases{last: time.Now(), ms: map[string]float64{}}
	s, err := cryptostore.Open(ctx, storePath, cryptostore.Options{Key: key, Role: "nse"})
	clear(key[:])
	if err != nil {
		return failed(err)
	}
	defer s.Close()
	ph.done("open_store")
	m, err := machine.Open(ctx, s, user, device, machine.Options{})
	if err != nil {
		return failed(err)
	}
	ph.done("open_machine")
	res, err := m.ReceiveSyncChanges(ctx, machine.SyncChanges{ToDeviceEvents: []json.RawMessage{ev.ToDevice}})
	if err != nil {
		return failed(err)
	}
	if res[0].Err != nil {
		return failed(fmt.Errorf("to-device event: %w", res[0].Err))
	}
	ph.done("to_device")
	dec, err := m.DecryptRoomEvent(ctx, ev.RoomID, ev.RoomEvent)
	if err != nil {
		return failed(fmt.Errorf("room event: %w", err))
	}
	ph.done("room_event")
	if err := s.Process().Close(); err != nil {
		return failed(err)
	}
	ph.done("release_lease")
	if err := s.Close(); err != nil {
		return failed(err)
	}
	ph.done("close")
	return report{Outcome: "ok", ToDeviceType: res[0].Type, RoomEventType: dec.Type, PhasesMS: ph.ms}
}

func failed(err error) report { return report{Outcome: "error", Error: err.Error()} }

// readKey reads the 32-byte store key as one line of hex from stdin.
func readKey() (*[32]byte, error) {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return nil, fmt.Errorf("store key on stdin: %w", err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(line))
	if err != nil || len(b) != 32 {
		return nil, errors.New("store key on stdin: want 64 hex digits")
	}
	var key [32]byte
	copy(key[:], b)
	clear(b)
	return &key, nil
}

// setPageCache sets every SQLite connection's page cache to kib KiB, as
// cache_size would if the store set it.
func setPageCache(kib int) {
	sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, _ string) error {
		_, err := conn.ExecContext(context.Background(), fmt.Sprintf("PRAGMA cache_size = -%d", kib), []driver.NamedValue{})
		return err
	})
}

// peakRSSKiB is VmHWM from /proc/self/status: the peak resident set of this
// process's own address space (rusage's maxrss of a child can include its
// parent's, copied at exec).
func peakRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
