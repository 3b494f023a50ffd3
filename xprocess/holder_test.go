package xprocess

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xolm/xolm/internal/flock"
)

func TestInvariant4HolderIdentityUniquePerProcess(t *testing.T) {
	e := newEnv(t)
	a, b := e.process("app"), e.process("app")
	ha, hb := a.Holder(), b.Holder()
	if ha.Role != "app" || ha.PID != os.Getpid() || len(ha.Nonce) != 2*nonceLen {
		t.Fatalf("holder %+v", ha)
	}
	if ha == hb || ha.String() == hb.String() {
		t.Fatalf("two instances with one role share the identity %s", ha)
	}
	// Same role, same pid: still two holders that exclude each other.
	la := acquire(t, a)
	held := mustHeld(t, b)
	if held.Holder != ha.String() {
		t.Fatalf("blocked by %q, want %q", held.Holder, ha)
	}
	la.Release()
	lb := acquire(t, b)
	if lb.Generation() != la.Generation()+1 {
		t.Fatalf("same-role handover: generation %d after %d", lb.Generation(), la.Generation())
	}
	lb.Release()
}

func TestParseHolderIsStrict(t *testing.T) {
	h, err := newHolder("nse.share_1-x")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseHolder(h.String())
	if err != nil || got != h {
		t.Fatalf("parseHolder(%q) = %+v, %v", h, got, err)
	}
	for _, bad := range []string{
		"", "app", "app:1", "app:1:0123456789abcdef:x", "../x:1:0123456789abcdef",
		"app:01:0123456789abcdef", "app:0:0123456789abcdef", "app:-1:0123456789abcdef",
		"app:1:0123456789ABCDEF", "app:1:0123456789abcde", "app:1:0123456789abcdeg",
		"a/b:1:0123456789abcdef", strings.Repeat("r", MaxRoleLen+1) + ":1:0123456789abcdef",
	} {
		if _, err := parseHolder(bad); !errors.Is(err, errBadHolder) {
			t.Errorf("parseHolder(%q) = %v, want errBadHolder", bad, err)
		}
	}
}

func TestDeadHolderIsTakenOverAtOnce(t *testing.T) {
	if !flock.Supported {
		t.Skip("without flock a dead holder is only taken over at expiry")
	}
	e := newEnv(t)
	dead, live := e.process("app"), e.process("nse")
	l := acquire(t, dead)
	// The process dies: the kernel drops its liveness lock; nothing else
	// happens, the row still names it with an unexpired lease.
	dead.mu.Lock()
	dead.alive.Close()
	dead.cur.gate.drop()
	dead.mu.Unlock()
	path := livenessPath(dead.aliveDir, dead.Holder())

	l2, err := live.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire over a dead holder: %v", err)
	}
	defer l2.Release()
	if l2.Generation() != l.Generation()+1 {
		t.Fatalf("takeover generation %d after %d", l2.Generation(), l.Generation())
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dead holder's liveness file was left behind: %v", err)
	}
	if err := write(dead, l, 1); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("write by the taken-over holder = %v, want ErrLeaseLost", err)
	}
}

func TestMissingOrMalformedHolderFiles(t *testing.T) {
	if !flock.Supported {
		t.Skip("needs flock")
	}
	dir := t.TempDir()
	h, _ := newHolder("app")
	if !holderDead(dir, h.String()) {
		t.Fatal("a holder without a liveness file counts as alive")
	}
	if holderDead(dir, "../../etc:1:0123456789abcdef") {
		t.Fatal("a malformed holder counts as dead")
	}
	f, err := markAlive(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	if holderDead(dir, h.String()) {
		t.Fatal("a locked liveness file counts as dead")
	}
	if err := markGone(f); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, h.String()+".lock")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("markGone left the file")
	}
}

func TestClockWentBackwards(t *testing.T) {
	if !flock.Supported {
		t.Skip("needs flock to keep the fake holder alive")
	}
	e := newEnv(t)
	a := e.process("app")
	// A live holder whose expiry lies implausibly far ahead: its clock (or
	// ours) jumped. It counts as expired.
	other, _ := newHolder("nse")
	f, err := markAlive(livenessDir(e.path), other)
	if err != nil {
		t.Fatal(err)
	}
	defer markGone(f)
	now := time.Now().UnixMilli()
	e.exec("UPDATE xprocess_lease SET holder = ?, expires_at = ?, generation = 7 WHERE 1", other.String(), now+time.Hour.Milliseconds())
	e.exec(`INSERT OR IGNORE INTO xprocess_lease(name, holder, expires_at, generation) VALUES (?, ?, ?, 7)`,
		leaseName, other.String(), now+time.Hour.Milliseconds())
	l, err := a.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire over a far-future expiry: %v", err)
	}
	if l.Generation() != 8 {
		t.Fatalf("generation %d, want 8", l.Generation())
	}
	l.Release()
	// Within two lease durations it is respected.
	e.exec("UPDATE xprocess_lease SET holder = ?, expires_at = ?", other.String(), time.Now().UnixMilli()+DefaultDuration.Milliseconds())
	if held := mustHeld(t, a); held.Holder != other.String() {
		t.Fatalf("blocked by %q", held.Holder)
	}
}
