package nodepeer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scriptPeer launches a throwaway script, given as source, that may use the
// protocol module of the real peers.
func scriptPeer(t *testing.T, source string) (*Peer, error) {
	t.Helper()
	rpc := filepath.Join(Require(t), "rpc.cjs")
	dir := t.TempDir()
	source = strings.ReplaceAll(source, "RPC", rpc)
	if err := os.WriteFile(filepath.Join(dir, "peer.cjs"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	return launch(t, dir, "peer.cjs")
}

func TestCallRemoteErrors(t *testing.T) {
	p := Start(t, "libolm.cjs")
	err := p.Call("no.such.method", nil, nil)
	re, ok := errors.AsType[*RemoteError](err)
	if !ok || re.Method != "no.such.method" || re.Code != "UNKNOWN_METHOD" {
		t.Fatalf("unknown method: got %v", err)
	}
	err = p.Call("account.generate_one_time_keys", map[string]any{"account": newAccount(p), "count": -1}, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Code != "BAD_PARAMS" {
		t.Fatalf("negative count: got %v, want BAD_PARAMS", err)
	}
	err = p.Call("rand.push", map[string]any{"bytes": "not*base64"}, nil)
	if re, ok := errors.AsType[*RemoteError](err); !ok || re.Code != "BAD_PARAMS" {
		t.Fatalf("bad base64: got %v, want BAD_PARAMS", err)
	}
	// A reported failure leaves the peer usable.
	var version string
	p.MustCall("version", nil, &version)
	if version != "3.2.15" {
		t.Fatalf("libolm version %q, want 3.2.15", version)
	}
}

func TestCallTimeout(t *testing.T) {
	p := Start(t, "libolm.cjs")
	p.timeout = 200 * time.Millisecond
	start := time.Now()
	err := p.Call("rpc.sleep", map[string]any{"ms": 30_000}, nil)
	if err == nil || !strings.Contains(err.Error(), "no reply within 200ms") {
		t.Fatalf("slow call: got %v, want a timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("timeout took %v", elapsed)
	}
	if _, ok := errors.AsType[*RemoteError](err); ok {
		t.Fatal("a timeout is reported as the peer's own error")
	}
	if err2 := p.Call("rpc.ping", nil, nil); err2 != err {
		t.Fatalf("call after a timeout: got %v, want the timeout error again", err2)
	}
}

func TestPeerExitShowsStderr(t *testing.T) {
	_, err := scriptPeer(t, `process.stderr.write("the peer could not start\n"); process.exit(3);`)
	if err == nil {
		t.Fatal("a script that exits at once was started")
	}
	for _, want := range []string{"peer exited", "exit status 3", "the peer could not start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStrayStdoutIsNotAReply(t *testing.T) {
	p, err := scriptPeer(t, `
process.stdout.write("a line that is not a reply\n");
require("RPC").serve({ echo: (params) => { console.log("console output"); return params; } });
`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	p.MustCall("echo", map[string]int{"x": 7}, &got)
	if got["x"] != 7 {
		t.Fatalf("echo returned %v", got)
	}
	// stderr is a separate pipe: its bytes may trail the reply a little.
	for _, want := range []string{"stdout: a line that is not a reply", "console output"} {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(p.stderr.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("stderr %q lacks %q", p.stderr.String(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestTailKeepsTheEnd(t *testing.T) {
	w := &tail{max: 8}
	w.Write([]byte("0123456789"))
	w.Write([]byte("ab"))
	if got := w.String(); got != "456789ab" {
		t.Fatalf("tail = %q, want %q", got, "456789ab")
	}
}
