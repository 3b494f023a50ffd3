package testhomeserver

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/xolm/xolm/machine"
)

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func upload(keys string) json.RawMessage {
	return json.RawMessage(`{"one_time_keys":` + keys + `}`)
}

// The server refuses what a real server refuses and what a correct device
// never sends, and takes a repeated request as the one request it is.
func TestUploadsClaimsAndDelivery(t *testing.T) {
	rec := &recorder{TB: t}
	hs := New(rec)
	const u, d = "@a:x", "A"
	hs.Answer(u, d, "r1", machine.RequestKeysUpload, "", upload(`{"signed_curve25519:2":{"key":"k2"},"signed_curve25519:1":{"key":"k1"}}`))
	hs.Answer(u, d, "r1", machine.RequestKeysUpload, "", upload(`{"signed_curve25519:2":{"key":"k2"}}`)) // a retry
	if len(rec.errs) != 0 || hs.OneTimeKeyCounts(u, d)["signed_curve25519"] != 2 {
		t.Fatalf("after an upload and its retry: %q, counts %v", rec.errs, hs.OneTimeKeyCounts(u, d))
	}
	hs.Answer(u, d, "r2", machine.RequestKeysUpload, "", upload(`{"signed_curve25519:1":{"key":"k1"}}`))
	hs.Answer(u, d, "r3", machine.RequestKeysUpload, "", upload(`{"signed_curve25519:1":{"key":"other"}}`))
	if len(rec.errs) != 2 {
		t.Fatalf("a key ID in a second request and with other content: %q", rec.errs)
	}

	if id, k, ok := hs.Claim(u, d); !ok || id != "signed_curve25519:1" || string(k) != `{"key":"k1"}` {
		t.Fatalf("claim: %s %s %v, want the lowest key ID", id, k, ok)
	}
	hs.Claim(u, d)
	if _, _, ok := hs.Claim(u, d); ok || len(hs.Claimed()) != 2 {
		t.Fatalf("claimed past the keys uploaded: %d handed out", len(hs.Claimed()))
	}

	send := json.RawMessage(`{"messages":{"@b:x":{"B":{"n":1}}}}`)
	hs.Answer(u, d, "t1", machine.RequestToDevice, "m.test", send)
	hs.Answer(u, d, "t1", machine.RequestToDevice, "m.test", send)
	if evs := hs.Take("@b:x", "B"); len(evs) != 1 || hs.Pending("@b:x", "B") != 0 {
		t.Fatalf("a to-device request sent twice delivered %d events", len(evs))
	}
}
