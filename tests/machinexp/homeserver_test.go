package machinexp_test

import (
	"testing"

	"github.com/xolm/xolm/internal/testhomeserver"
	"github.com/xolm/xolm/machine"
	"github.com/xolm/xolm/tests/machinexp/deviceline"
)

// homeserver is the test's homeserver (see testhomeserver: it fails a key
// ID uploaded in a second request, which would mean a process generated or
// sent keys it should not have), with the means to serve Alice's processes.
type homeserver struct {
	*testhomeserver.Server
	t *testing.T
}

func newHomeserver(t *testing.T) *homeserver {
	return &homeserver{Server: testhomeserver.New(t), t: t}
}

// flushProc sends the outgoing requests of Alice's process p until none are
// left and returns them.
func (hs *homeserver) flushProc(p *deviceline.Proc) []deviceline.OutRequest {
	t := hs.t
	t.Helper()
	var sent []deviceline.OutRequest
	for range 5 {
		reqs := mustCall(t, p, deviceline.Request{Op: deviceline.OpOutgoing}).Requests
		if len(reqs) == 0 {
			return sent
		}
		for _, r := range reqs {
			hs.send(p, r)
		}
		sent = append(sent, reqs...)
	}
	t.Fatalf("%s process keeps sending requests", p.Role)
	return nil
}

// send answers one request of Alice's process p and marks it as sent there.
func (hs *homeserver) send(p *deviceline.Proc, r deviceline.OutRequest) {
	t := hs.t
	t.Helper()
	resp := hs.answer(r)
	mustCall(t, p, deviceline.Request{Op: deviceline.OpMark, RequestID: r.ID, RequestType: r.Type, Response: resp})
}

// answer answers one request of Alice's processes.
func (hs *homeserver) answer(r deviceline.OutRequest) []byte {
	return hs.Answer(alice, aliceDevice, r.ID, machine.RequestType(r.Type), r.EventType, r.Body)
}
