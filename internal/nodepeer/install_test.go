package nodepeer

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installHelperEnv, when set, makes the test binary install into the
// directory it names and report instead of running tests: the race test runs
// two such processes at once.
const installHelperEnv = "NODEPEER_INSTALL_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(installHelperEnv); dir != "" {
		installed, out, err := ensureInstalled(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%v\n%s", err, out)
			os.Exit(1)
		}
		fmt.Printf("installed=%v\n", installed)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// copyProject copies the npm project's manifest files, not its node_modules,
// into a fresh directory.
func copyProject(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json", ".npmrc"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestInstallRace starts two processes that install into the same fresh
// project at once: exactly one may run npm ci, the other must wait for it and
// find the result current. A third attempt, in this process, installs nothing.
func TestInstallRace(t *testing.T) {
	dir := copyProject(t, Require(t))
	procs := make([]*exec.Cmd, 2)
	outs := make([]strings.Builder, 2)
	for i := range procs {
		procs[i] = exec.Command(os.Args[0], "-test.run=^$")
		procs[i].Env = append(os.Environ(), installHelperEnv+"="+dir)
		procs[i].Stdout = &outs[i]
		procs[i].Stderr = &outs[i]
		if err := procs[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	installs := 0
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("installer %d: %v\n%s", i, err, outs[i].String())
		}
		switch out := strings.TrimSpace(outs[i].String()); out {
		case "installed=true":
			installs++
		case "installed=false":
		default:
			t.Fatalf("installer %d printed %q", i, out)
		}
	}
	if installs != 1 {
		t.Fatalf("%d of 2 racing processes ran npm ci, want exactly 1", installs)
	}

	digest, err := lockfileDigest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !current(dir, digest) {
		t.Fatal("node_modules not marked current after the install")
	}
	installed, _, err := ensureInstalled(dir)
	if err != nil || installed {
		t.Fatalf("install into a current project: installed=%v err=%v", installed, err)
	}

	for name, want := range map[string]string{"@matrix-org/olm": "3.2.15", "@matrix-org/matrix-sdk-crypto-wasm": "18.9.0"} {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
		if err != nil {
			t.Fatal(err)
		}
		var pkg struct{ Version string }
		if err := json.Unmarshal(b, &pkg); err != nil {
			t.Fatal(err)
		}
		if pkg.Version != want {
			t.Errorf("%s installed at %s, want %s", name, pkg.Version, want)
		}
	}
}

// TestStaleInstallIsDetected checks the stamp logic: a changed lock file, or
// a missing stamp, means node_modules is not current.
func TestStaleInstallIsDetected(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), []byte(`{"lockfileVersion": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	digest, err := lockfileDigest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if current(dir, digest) {
		t.Fatal("a project without node_modules is current")
	}
	if err := os.Mkdir(filepath.Join(dir, "node_modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeStamp(dir, digest); err != nil {
		t.Fatal(err)
	}
	if !current(dir, digest) {
		t.Fatal("a freshly stamped project is not current")
	}
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), []byte(`{"lockfileVersion": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := lockfileDigest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if changed == digest || current(dir, changed) {
		t.Fatal("a project whose lock file changed is still current")
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "module github.com/xolm/xolm\n") {
		t.Fatalf("go.mod at %s is not xolm's", root)
	}
}

// outcomeRecorder stands in for a test to see whether Require skips or fails.
// Unlike a real test, it returns from Skipf and Fatalf.
type outcomeRecorder struct {
	testing.TB
	skips, fatals []string
}

func (r *outcomeRecorder) Helper() {}

func (r *outcomeRecorder) Skipf(format string, args ...any) {
	r.skips = append(r.skips, fmt.Sprintf(format, args...))
}

func (r *outcomeRecorder) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

// TestMissingNodeSkipsOrFails checks the policy for a machine without Node:
// skip normally, fail under CI=true.
func TestMissingNodeSkipsOrFails(t *testing.T) {
	Require(t) // the install itself must not be what is missing
	t.Setenv("PATH", t.TempDir())
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &outcomeRecorder{TB: t}
		Require(r)
		reported := r.skips
		if ci == "true" {
			reported = r.fatals
		}
		if len(reported) != 2 || len(r.skips)+len(r.fatals) != 2 ||
			!strings.Contains(reported[0], "node not found") || !strings.Contains(reported[1], "npm not found") {
			t.Errorf("CI=%q: skips %q, fatals %q; want node and npm reported, as failures only under CI=true",
				ci, r.skips, r.fatals)
		}
	}
}
