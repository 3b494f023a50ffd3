// Transcript replay: tests/testdata/transcripts holds conversations recorded
// from libolm by tests/node/record.cjs with fixed randomness. Each step is
// replayed against xolm with the random bytes libolm drew for it, and every
// output must equal libolm's byte for byte; failing steps must fail with the
// same class of error and change nothing.
//
// To record the transcripts again (this needs node and npm):
//
//	go test ./tests/interop -run TestTranscript -update
//
// (Name the package: the other test packages under tests/ have no -update
// flag.) Normal runs only read the files.

package interop

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/xolm/xolm/internal/b64"
	"github.com/xolm/xolm/internal/nodepeer"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

var update = flag.Bool("update", false, "record the libolm transcripts in "+transcriptDir+" again")

const transcriptDir = "../testdata/transcripts"

// generator is the libolm build every transcript must come from.
const generator = "@matrix-org/olm 3.2.15 (libolm 3.2.15 compiled to wasm)"

// transcriptScenarios are the scenarios of tests/node/scenarios.cjs, each
// recorded to <name>.json.
var transcriptScenarios = []string{"olm", "megolm"}

type transcript struct {
	Generator   string `json:"generator"`
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	Seed        string `json:"seed"`
	Randomness  string `json:"randomness"`
	PickleKey   string `json:"pickle_key"`
	Steps       []step `json:"steps"`
}

// step is one recorded libolm call. Random holds the bytes libolm drew,
// Outcome is "ok" or the class of libolm's error, Result is libolm's return
// value when ok.
type step struct {
	Op      string          `json:"op"`
	Args    json.RawMessage `json:"args"`
	Random  []byte          `json:"random"`
	Outcome string          `json:"outcome"`
	Result  json.RawMessage `json:"result"`
}

// stepArgs holds the arguments of every op; each op reads its own.
type stepArgs struct {
	Account          string  `json:"account"`
	Session          string  `json:"session"`
	Key              *string `json:"key"`
	Pickle           string  `json:"pickle"`
	Count            int     `json:"count"`
	Message          string  `json:"message"`
	IdentityKey      string  `json:"identity_key"`
	OneTimeKey       string  `json:"one_time_key"`
	Body             string  `json:"body"`
	Type             int     `json:"type"`
	Plaintext        string  `json:"plaintext"`
	RemoveOneTimeKey bool    `json:"remove_one_time_key"`
	SessionKey       string  `json:"session_key"`
	MessageIndex     uint32  `json:"message_index"`
}

// replayer holds the xolm objects of one transcript by their names in it.
type replayer struct {
	t        *testing.T
	tr       *transcript
	accounts map[string]*olm.Account
	sessions map[string]*olm.Session
	outbound map[string]*megolm.OutboundGroupSession
	inbound  map[string]*megolm.InboundGroupSession
}

func newReplayer(t *testing.T, tr *transcript) *replayer {
	return &replayer{
		t:        t,
		tr:       tr,
		accounts: map[string]*olm.Account{},
		sessions: map[string]*olm.Session{},
		outbound: map[string]*megolm.OutboundGroupSession{},
		inbound:  map[string]*megolm.InboundGroupSession{},
	}
}

// snapshotKey pickles objects for snapshots.
var snapshotKey = []byte("snapshot")

// snapshot is every object's libolm pickle by kind and name.
func (r *replayer) snapshot() map[string]string {
	m := map[string]string{}
	for name, o := range r.accounts {
		m["account "+name] = o.LibolmPickle(snapshotKey)
	}
	for name, o := range r.sessions {
		m["session "+name] = o.LibolmPickle(snapshotKey)
	}
	for name, o := range r.outbound {
		m["outbound "+name] = o.LibolmPickle(snapshotKey)
	}
	for name, o := range r.inbound {
		m["inbound "+name] = o.LibolmPickle(snapshotKey)
	}
	return m
}

// pickleKey is the libolm pickle key of a step; every pickling op has one.
func (r *replayer) pickleKey(a *stepArgs) []byte {
	r.t.Helper()
	if a.Key == nil {
		r.t.Fatal("transcript step without a pickle key")
	}
	return []byte(*a.Key)
}

func TestTranscript(t *testing.T) {
	if *update {
		recordTranscripts(t)
	}
	for _, name := range transcriptScenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tr := loadTranscript(t, name)
			checkRandomness(t, tr)
			newReplayer(t, tr).run()
		})
	}
}

// recordTranscripts runs the recorder on every scenario, through the peer
// harness, overwriting the transcript files.
func recordTranscripts(t *testing.T) {
	p := nodepeer.Start(t, "record.cjs")
	for _, name := range transcriptScenarios {
		out, err := filepath.Abs(filepath.Join(transcriptDir, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var summary struct {
			Steps       int `json:"steps"`
			RandomBytes int `json:"random_bytes"`
		}
		p.MustCall("record", map[string]any{"scenario": name, "out": out}, &summary)
		t.Logf("recorded %s: %d steps, %d random bytes", out, summary.Steps, summary.RandomBytes)
	}
}

func loadTranscript(t *testing.T, name string) *transcript {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(transcriptDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var tr transcript
	if err := d.Decode(&tr); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	if tr.Generator != generator || tr.Scenario != name || len(tr.Steps) == 0 {
		t.Fatalf("%s.json: generator %q, scenario %q, %d steps", name, tr.Generator, tr.Scenario, len(tr.Steps))
	}
	return &tr
}

// checkRandomness checks that the steps' random bytes, in order, are the
// stream the header describes: SHA-256(seed ‖ counter), counter a big-endian
// uint32 from 0.
func checkRandomness(t *testing.T, tr *transcript) {
	var drawn []byte
	for _, s := range tr.Steps {
		drawn = append(drawn, s.Random...)
	}
	var stream []byte
	for counter := uint32(0); len(stream) < len(drawn); counter++ {
		h := sha256.New()
		h.Write([]byte(tr.Seed))
		h.Write(binary.BigEndian.AppendUint32(nil, counter))
		stream = h.Sum(stream)
	}
	if !bytes.Equal(drawn, stream[:len(drawn)]) {
		t.Fatalf("the steps' random bytes are not the stream of seed %q", tr.Seed)
	}
}

// stepRandom hands out exactly one step's recorded random bytes. Asking for
// more is an error; bytes left over fail the step.
type stepRandom struct {
	b    []byte
	over int // bytes asked for beyond the recording
}

func (r *stepRandom) Read(p []byte) (int, error) {
	if len(p) > len(r.b) {
		r.over += len(p) - len(r.b)
		return 0, fmt.Errorf("recorded randomness exhausted: %d bytes asked for, %d left", len(p), len(r.b))
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// opFunc replays one op against xolm and returns its result, in the JSON
// shape libolm's binding returns.
type opFunc func(r *replayer, a *stepArgs, rand io.Reader) (any, error)

// replayOp finds op among those of transcript_olm_test.go and
// transcript_megolm_test.go.
func replayOp(op string) opFunc {
	if fn, ok := olmOps[op]; ok {
		return fn
	}
	return megolmOps[op]
}

func (r *replayer) run() {
	t := r.t
	for i, s := range r.tr.Steps {
		fn := replayOp(s.Op)
		if fn == nil {
			t.Fatalf("step %d: no replay for op %s", i, s.Op)
		}
		var a stepArgs
		d := json.NewDecoder(bytes.NewReader(s.Args))
		d.DisallowUnknownFields()
		if err := d.Decode(&a); err != nil {
			t.Fatalf("step %d %s: args: %v", i, s.Op, err)
		}
		var before map[string]string
		if s.Outcome != "ok" {
			before = r.snapshot()
		}
		rand := &stepRandom{b: s.Random}
		got, err := fn(r, &a, rand)
		if rand.over > 0 || len(rand.b) > 0 {
			t.Fatalf("step %d %s: xolm read %d bytes more than libolm drew (%d), left %d unread",
				i, s.Op, rand.over, len(s.Random), len(rand.b))
		}
		if s.Outcome != "ok" {
			if err == nil {
				t.Fatalf("step %d %s: xolm succeeded, libolm failed with %s", i, s.Op, s.Outcome)
			}
			if !matchesOutcome(s.Op, s.Outcome, err) {
				t.Fatalf("step %d %s: xolm failed with %v, libolm with %s", i, s.Op, err, s.Outcome)
			}
			if after := r.snapshot(); !reflect.DeepEqual(before, after) {
				t.Fatalf("step %d %s: the failure changed xolm's state", i, s.Op)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d %s: %v", i, s.Op, err)
		}
		checkResult(t, i, &s, got)
	}
}

// checkResult compares xolm's result with libolm's as JSON values, so that
// strings (keys, messages, pickles, JSON documents) must match exactly.
func checkResult(t *testing.T, i int, s *step, got any) {
	t.Helper()
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var want, have any
	if err := json.Unmarshal(s.Result, &want); err != nil {
		t.Fatalf("step %d %s: recorded result: %v", i, s.Op, err)
	}
	if err := json.Unmarshal(gotJSON, &have); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, have) {
		t.Fatalf("step %d %s %s:\nxolm   %s\nlibolm %s", i, s.Op, s.Args, gotJSON, s.Result)
	}
}

// unb64 decodes a base64 argument of a step; libolm produced it, so a failure
// is a broken transcript.
func (r *replayer) unb64(s string) []byte {
	r.t.Helper()
	b, err := b64.Decode(s)
	if err != nil {
		r.t.Fatalf("transcript holds invalid base64 %q: %v", s, err)
	}
	return b
}

// errorClasses says which xolm errors stand for each class of libolm error.
// xolm reports a Megolm message with a bad signature as it does one with a bad
// MAC, and libolm's nameless failure to export below the first known index as
// an unknown message index.
var errorClasses = map[string][]error{
	"bad_mac":               {olm.ErrBadMAC, megolm.ErrBadMAC},
	"bad_signature":         {megolm.ErrBadMAC},
	"missing_one_time_key":  {olm.ErrMissingOneTimeKey},
	"unknown_message_index": {megolm.ErrUnknownMessageIndex},
	"invalid_message":       {megolm.ErrInvalidMessage, olm.ErrDecode},
	"bad_pickle_key":        {olm.ErrPickleAuth, megolm.ErrPickleAuth},
}

func matchesOutcome(op, outcome string, err error) bool {
	if outcome == "unknown_error" {
		return op == "inbound_group.export_session" && errors.Is(err, megolm.ErrUnknownMessageIndex)
	}
	for _, target := range errorClasses[outcome] {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
