// Package machinexp_test runs the machine across real OS processes: Alice's
// device is two helper processes (package deviceproc, driven over
// deviceline's protocol), an app and its notification extension, on one
// store file; her peers are machines in the test process on stores of their
// own, and the test is the homeserver between them.
package machinexp_test

import (
	"crypto/rand"
	"github.com/xolm/xolm/internal/gobuild"
	"path/filepath"
	"testing"
	"time"

	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

// helperBin is the helper program, built once for all tests.
var helperBin string

func TestMain(m *testing.M) { gobuild.TestMain(m, "machinexp", deviceline.Build, &helperBin) }

// within bounds every wait for a helper; it catches a hung test and times
// nothing.
const within = 30 * time.Second

const (
	alice       = "@alice:example.org"
	aliceDevice = "ALICE"
)

// aliceProcs is Alice's device: two processes on one store file.
type aliceProcs struct {
	app, nse *deviceline.Proc
	path     string
	key      [32]byte
}

// startAlice starts Alice's app, which creates the store and her account
// and uploads her keys, then her notification extension on the same store.
// The app opens the new file alone: processes that create a store file at
// the same instant race to set it up.
func startAlice(t *testing.T, hs *homeserver, skipInvalidation bool) *aliceProcs {
	t.Helper()
	a := &aliceProcs{path: filepath.Join(t.TempDir(), "crypto.db")}
	rand.Read(a.key[:])
	cfg := deviceline.Config{DB: a.path, Key: a.key, UserID: alice, DeviceID: aliceDevice, SkipInvalidation: skipInvalidation}
	cfg.Role = "app"
	a.app = start(t, cfg)
	hs.flushProc(a.app)
	cfg.Role = "nse"
	a.nse = start(t, cfg)
	if a.nse.Curve25519 != a.app.Curve25519 {
		t.Fatal("the two processes opened different accounts")
	}
	return a
}

func start(t *testing.T, cfg deviceline.Config) *deviceline.Proc {
	t.Helper()
	p, err := deviceline.Start(helperBin, cfg, within)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// mustCall sends req to p and returns the reply, which must report success.
func mustCall(t *testing.T, p *deviceline.Proc, req deviceline.Request) deviceline.Reply {
	t.Helper()
	r, err := p.Call(req, within)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK {
		t.Fatalf("%s process %s: %s", p.Role, req.Op, r.Err)
	}
	return r
}

// call is one request for one process.
type call struct {
	p   *deviceline.Proc
	req deviceline.Request
}

// race sends every call, all to start at the same instant, and only then
// waits for their replies, which must report success.
func race(t *testing.T, calls ...call) []deviceline.Reply {
	t.Helper()
	at := time.Now().Add(20 * time.Millisecond).UnixNano()
	ids := make([]int, len(calls))
	for i, c := range calls {
		c.req.StartAt = at
		var err error
		if ids[i], err = c.p.Send(c.req); err != nil {
			t.Fatal(err)
		}
	}
	replies := make([]deviceline.Reply, len(calls))
	for i, c := range calls {
		r, err := c.p.Wait(ids[i], within)
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK {
			t.Fatalf("%s process %s: %s", c.p.Role, c.req.Op, r.Err)
		}
		replies[i] = r
	}
	return replies
}
