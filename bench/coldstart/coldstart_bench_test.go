// Package coldstart_test measures a notification extension's cold start as a
// whole process: spawn, open the store, take the lease, decrypt one
// to-device event and one room event, exit. The store holds 10,000 Olm
// sessions and 100,000 inbound group sessions. It reports the child's wall
// time (median) and peak resident set beside the same binary started and
// exited without touching the store, in one run. The target is a peak
// resident set under 24 MB, iOS's limit for that process.
//
// The fixture is built once (about a minute on two cores) and cached in
// $TMPDIR/xolm-coldstart-<version>; -coldstart.rebuild builds it again, and
// when it is missing and the estimated build time exceeds
// -coldstart.budget the benchmark is skipped. Every child runs on a fresh
// copy of the fixture, so each one starts on the same file.
//
// Run with: go test -run '^$' -bench . -benchtime 20x ./bench/coldstart
package coldstart_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
)

var (
	rebuild = flag.Bool("coldstart.rebuild", false, "rebuild the cached cold-start fixture")
	budget  = flag.Duration("coldstart.budget", 5*time.Minute,
		"skip when building the missing fixture is estimated to take longer")
)

// childBinary is the nseproc binary built for this run.
var childBinary string

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if childBinary != "" {
		os.RemoveAll(filepath.Dir(childBinary))
	}
	os.Exit(code)
}

// buildChild compiles nseproc once per run.
func buildChild(b *testing.B) string {
	b.Helper()
	if childBinary != "" {
		return childBinary
	}
	dir, err := os.MkdirTemp("", "xolm-nseproc-")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "nseproc")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/xolm/xolm/bench/coldstart/nseproc").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		b.Fatalf("go build nseproc: %v\n%s", err, out)
	}
	childBinary = bin
	return bin
}

// BenchmarkNSEColdStart runs the extension's whole life on a fresh copy of
// the fixture, with SQLite's default page cache and with a smaller one, each
// beside the baseline child.
func BenchmarkNSEColdStart(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("peak RSS is read from Linux's /proc and rusage")
	}
	bin := buildChild(b)
	if _, err := os.Stat(filepath.Join(fixtureDir(), eventsFile)); err != nil || *rebuild {
		if est := estimateBuild(b); est > *budget {
			b.Skipf("building the fixture would take about %v, over -coldstart.budget %v", est.Round(time.Second), *budget)
		}
	}
	fx := loadFixture(b, *rebuild)
	*rebuild = false // once per run, not once per sub-benchmark
	for _, c := range []struct {
		name string
		args []string
		env  []string
	}{
		{"sqlite-cache=default", nil, nil},
		{"sqlite-cache=256KiB", []string{"-sqlite-cache-kib", "256"}, nil},
		{"sqlite-cache=256KiB/GOGC=50", []string{"-sqlite-cache-kib", "256"}, []string{"GOGC=50"}},
	} {
		b.Run(c.name, func(b *testing.B) { benchColdStart(b, bin, fx, c.args, c.env) })
	}
}

// benchColdStart reports the child's peak resident set as its own VmHWM.
// rusage's maxrss is reported beside it but is not the child's: on Linux, exec
// records the replaced address space's high-water mark, and os/exec starts
// the child sharing the parent's (vfork), so it reads at least the
// benchmark process's own peak (the baseline child shows it).
func benchColdStart(b *testing.B, bin string, fx *fixture, args, env []string) {
	run := b.TempDir()
	store := filepath.Join(run, storeFile)
	work := append([]string{"-store", store, "-events", fx.events, "-user", aliceUser, "-device", aliceDevice}, args...)
	var base, full []childRun
	for b.Loop() {
		b.StopTimer()
		copyFixture(b, fx.dir, run)
		b.StartTimer()
		base = append(base, runChild(b, bin, []string{"-baseline"}, env))
		r := runChild(b, bin, work, env)
		if r.report.ToDeviceType != "m.room_key" || r.report.RoomEventType != "m.room.message" {
			b.Fatalf("child decrypted %q and %q", r.report.ToDeviceType, r.report.RoomEventType)
		}
		full = append(full, r)
	}
	wall, rss, hwm := summarize(full)
	bwall, brss, bhwm := summarize(base)
	b.ReportMetric(wall, "wall-ms")
	b.ReportMetric(hwm, "peak-rss-MB")
	b.ReportMetric(rss, "rusage-maxrss-MB")
	b.ReportMetric(bwall, "baseline-wall-ms")
	b.ReportMetric(bhwm, "baseline-rss-MB")
	b.ReportMetric(brss, "baseline-rusage-maxrss-MB")
	for _, p := range []string{"open_store", "open_machine", "to_device", "room_event", "release_lease", "close"} {
		b.ReportMetric(medianPhase(full, p), p+"-ms")
	}
	b.ReportMetric(wall/bwall, "x-baseline-wall")
	b.ReportMetric(hwm/bhwm, "x-baseline-rss")
}

// hexKey is how the child reads a store key from stdin.
func hexKey(k [32]byte) string { return hex.EncodeToString(k[:]) }

// childRun is one child's outcome.
type childRun struct {
	wall   time.Duration
	maxRSS int64 // KiB, from rusage
	report childReport
}

// childReport is the line nseproc prints.
type childReport struct {
	Outcome       string             `json:"outcome"`
	Error         string             `json:"error"`
	ToDeviceType  string             `json:"to_device_type"`
	RoomEventType string             `json:"room_event_type"`
	VmHWMKiB      int64              `json:"vm_hwm_kib"`
	WorkMS        float64            `json:"work_ms"`
	PhasesMS      map[string]float64 `json:"phases_ms"`
}

// runChild spawns the child with the store key on stdin and waits for it.
func runChild(b *testing.B, bin string, args, env []string) childRun {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader([]byte(hexKey(storeKey) + "\n"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var r childRun
	r.wall = wall
	if jerr := json.Unmarshal(out.Bytes(), &r.report); err != nil || jerr != nil || r.report.Outcome != "ok" {
		b.Fatalf("child %v: %v %v\n%s%s", args, err, jerr, out.Bytes(), stderr.Bytes())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss
	}
	return r
}

// summarize returns the median wall time in milliseconds and the largest
// peak resident sets (rusage and VmHWM) in MB.
func summarize(runs []childRun) (wallMS, rssMB, hwmMB float64) {
	walls := make([]time.Duration, len(runs))
	for i, r := range runs {
		walls[i] = r.wall
		rssMB = max(rssMB, float64(r.maxRSS)/1024)
		hwmMB = max(hwmMB, float64(r.report.VmHWMKiB)/1024)
	}
	slices.Sort(walls)
	return float64(walls[len(walls)/2].Microseconds()) / 1000, rssMB, hwmMB
}

// medianPhase is the median time of one of the child's steps, in
// milliseconds.
func medianPhase(runs []childRun, phase string) float64 {
	ms := make([]float64, len(runs))
	for i, r := range runs {
		ms[i] = r.report.PhasesMS[phase]
	}
	slices.Sort(ms)
	return ms[len(ms)/2]
}

// copyFixture replaces dst's files with fresh copies of the fixture's store
// files.
func copyFixture(b *testing.B, src, dst string) {
	b.Helper()
	old, _ := os.ReadDir(dst)
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == eventsFile || !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
