package lineproc

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// The test binary is its own helper: with LINEPROC_HELPER set it serves
// echoRequests on stdin instead of running the tests.
func TestMain(m *testing.M) {
	if os.Getenv("LINEPROC_HELPER") != "" {
		if err := echoHelper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type echoRequest struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
	// Raw, when set, is printed as it is instead of a reply.
	Raw string `json:"raw,omitempty"`
	// After makes the reply wait for the reply to request After.
	After int `json:"after,omitempty"`
}

func (r *echoRequest) SetID(id int) { r.ID = id }

type echoReply struct {
	ID    int    `json:"id"`
	Event string `json:"event,omitempty"`
	Text  string `json:"text"`
}

// echoHelper prints "ready", then for each request an event "got" and a
// reply with its text upper-cased.
func echoHelper() error {
	out := NewOutput(os.Stdout)
	out.Print(echoReply{Event: "ready"})
	wait, err := Serve(os.Stdin, out, func(req echoRequest) {
		if req.Raw != "" {
			os.Stdout.WriteString(req.Raw + "\n")
			return
		}
		out.Print(echoReply{ID: req.ID, Event: "got", Text: req.Text})
		out.Print(echoReply{ID: req.ID, Text: strings.ToUpper(req.Text)})
	})
	wait()
	return err
}

func startEcho(t *testing.T) *Proc[echoReply] {
	t.Helper()
	t.Setenv("LINEPROC_HELPER", "1")
	p, err := Start[echoReply](os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	if _, err := p.WaitEvent(0, "ready", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// Requests sent at once are each answered under their own ID, with their
// events, and the helper exits cleanly when its input ends.
func TestRequestsAnsweredByID(t *testing.T) {
	p := startEcho(t)
	ids := map[int]string{}
	for _, text := range []string{"a", "b", "c"} {
		id, err := p.Send(&echoRequest{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = text
	}
	for id, text := range ids {
		got, err := p.WaitEvent(id, "got", 10*time.Second)
		if err != nil || got.Text != text {
			t.Fatalf("event of %d: %+v %v", id, got, err)
		}
		r, err := p.Wait(id, 10*time.Second)
		if err != nil || r.Text != strings.ToUpper(text) {
			t.Fatalf("reply to %d: %+v %v", id, r, err)
		}
	}
	if n := len(p.Replies()); n != 1+2*len(ids) {
		t.Fatalf("%d lines read", n)
	}
	if err := p.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// A line that is not a reply, or an input line the helper cannot read as a
// request (Serve reports it), fails the waits at once rather than letting
// them run into their timeout.
func TestBrokenConversationFailsWaits(t *testing.T) {
	for want, send := range map[string]func(p *Proc[echoReply]) error{
		"unreadable line": func(p *Proc[echoReply]) error {
			_, err := p.Send(&echoRequest{Raw: "not json"})
			return err
		},
		"could not read a request": func(p *Proc[echoReply]) error {
			_, err := p.stdin.Write([]byte("not json\n"))
			return err
		},
	} {
		t.Run(want, func(t *testing.T) {
			p := startEcho(t)
			if err := send(p); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := p.Wait(99, time.Minute)
			if err == nil || !strings.Contains(err.Error(), want) || time.Since(start) > 30*time.Second {
				t.Fatalf("wait: %v after %v", err, time.Since(start))
			}
		})
	}
}

// A killed helper ends every wait.
func TestKillEndsWaits(t *testing.T) {
	p := startEcho(t)
	p.Kill()
	if _, err := p.Wait(1, time.Minute); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("wait on a killed helper: %v", err)
	}
	p.Kill() // idempotent
}
