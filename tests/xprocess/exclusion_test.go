package xprocess_test

import (
	"strconv"
	"testing"

	"github.com/xolm/xolm/tests/xprocess/harness"
)

// runRMW starts one rmw process per role, each taking steps lease-guarded
// read-modify-write steps on one counter, and checks that no update was lost
// and that each saw only growing generations (the helper fails otherwise).
func runRMW(t *testing.T, steps int, roles ...string) {
	path := dbPath(t)
	procs := make([]*harness.Proc, len(roles))
	for i, role := range roles {
		procs[i] = start(t, path, "-mode", "rmw", "-role", role, "-n", strconv.Itoa(steps))
	}
	holders := map[string]bool{}
	for i, p := range procs {
		f := expect(t, p, "done")
		if got, _ := strconv.Atoi(f[1]); got != steps {
			t.Fatalf("process %d took %d steps, want %d", i, got, steps)
		}
		if err := p.Wait(); err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		holders[p.Holder] = true
	}
	if len(holders) != len(roles) {
		t.Fatalf("%d processes had %d distinct holder identities", len(roles), len(holders))
	}
	db := openDB(t, path)
	if got := queryInt(t, db, "SELECT v FROM counter WHERE id = 1"); got != int64(steps*len(roles)) {
		t.Fatalf("counter = %d after %d×%d steps: updates were lost", got, len(roles), steps)
	}
	gen := queryInt(t, db, "SELECT generation FROM xprocess_lease")
	t.Logf("%d processes × %d steps: %d generations (holder changes)", len(roles), steps, gen)
	integrityOK(t, db)
}

func TestExclusionNoLostUpdates(t *testing.T) {
	runRMW(t, 1500, "app", "nse", "share", "app")
}

func TestInvariant4SameRoleProcessesExclude(t *testing.T) {
	runRMW(t, 500, "nse", "nse")
}
