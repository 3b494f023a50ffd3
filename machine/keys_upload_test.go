package machine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/internal/canonicaljson"
	"github.com/xolm/xolm/olm"
)

// keysAccount returns a copy of the machine's stored account.
func keysAccount(t testing.TB, m *Machine) *cryptostore.AccountRecord {
	t.Helper()
	var rec *cryptostore.AccountRecord
	err := m.store.View(t.Context(), "test account", func(tx *cryptostore.Tx) error {
		var err error
		rec, err = tx.Account()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func keysServerCounts(t testing.TB, m *Machine) cryptostore.ServerKeyCounts {
	t.Helper()
	var c cryptostore.ServerKeyCounts
	err := m.store.View(t.Context(), "test counts", func(tx *cryptostore.Tx) error {
		var err error
		c, err = tx.ServerKeyCounts()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The first upload carries the device keys, TargetOneTimeKeys one-time keys
// and a fallback key, each signed by the device as the spec's "Signing JSON"
// says, with "fallback": true inside the fallback key's signed JSON.
func TestKeysUploadBodyIsSigned(t *testing.T) {
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	ups := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	if len(ups) != 1 {
		t.Fatalf("%d uploads", len(ups))
	}
	var body keysUploadBody
	if err := json.Unmarshal(ups[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	ed := d.IdentityKeys().Ed25519
	if err := canonicaljson.Verify(body.DeviceKeys, "@alice:example.org", "ALICE", ed); err != nil {
		t.Fatalf("device keys: %v", err)
	}
	var dk deviceKeysJSON
	json.Unmarshal(body.DeviceKeys, &dk)
	want := deviceKeysJSON{UserID: "@alice:example.org", DeviceID: "ALICE",
		Algorithms: []string{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"},
		Keys:       map[string]string{"curve25519:ALICE": d.IdentityKeys().Curve25519.String(), "ed25519:ALICE": ed.String()}}
	if dk.UserID != want.UserID || dk.DeviceID != want.DeviceID || !slices.Equal(dk.Algorithms, want.Algorithms) || !maps.Equal(dk.Keys, want.Keys) {
		t.Fatalf("device keys %+v", dk)
	}
	if canon, _ := canonicaljson.Canonicalize(body.DeviceKeys); !bytes.Equal(canon, body.DeviceKeys) {
		t.Fatal("device keys are not in canonical form")
	}
	acct := keysAccount(t, d.Machine).Account
	if len(body.OneTimeKeys) != TargetOneTimeKeys || len(acct.OneTimeKeys()) != TargetOneTimeKeys {
		t.Fatalf("%d one-time keys uploaded, %d unpublished", len(body.OneTimeKeys), len(acct.OneTimeKeys()))
	}
	for _, k := range acct.OneTimeKeys() {
		raw := body.OneTimeKeys["signed_curve25519:"+k.ID.String()]
		if err := canonicaljson.Verify(raw, "@alice:example.org", "ALICE", ed); err != nil {
			t.Fatalf("one-time key %s: %v", k.ID, err)
		}
		var otk oneTimeKeyJSON
		if json.Unmarshal(raw, &otk); otk.Key != k.Key.String() || otk.Fallback {
			t.Fatalf("one-time key %s: %s", k.ID, raw)
		}
	}
	fb, ok := acct.UnpublishedFallbackKey()
	raw := body.FallbackKeys["signed_curve25519:"+fb.ID.String()]
	if !ok || len(body.FallbackKeys) != 1 || canonicaljson.Verify(raw, "@alice:example.org", "ALICE", ed) != nil {
		t.Fatalf("fallback keys %v", body.FallbackKeys)
	}
	var obj map[string]any
	json.Unmarshal(raw, &obj)
	if obj["fallback"] != true || obj["key"] != fb.Key.String() {
		t.Fatalf("fallback key %s", raw)
	}
	delete(obj, "fallback")
	stripped, _ := json.Marshal(obj)
	if canonicaljson.Verify(stripped, "@alice:example.org", "ALICE", ed) == nil {
		t.Fatal(`the signature does not cover "fallback"`)
	}
}

// Keys are published only once the upload succeeded; until then the same
// request (ID and body) comes back, from a retry, from another process on
// the same store, and after a restart.
func TestKeysPublishedOnlyAfterUploadSucceeds(t *testing.T) {
	ctx := context.Background()
	s := newKeysServer(t)
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	first := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	retry := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	other, err := Open(ctx, openStore(t, d.path, "nse"), "@alice:example.org", "ALICE", Options{})
	if err != nil {
		t.Fatal(err)
	}
	fromOther := keysRequestsOf(t, other, RequestKeysUpload)
	for _, got := range [][]*Request{retry, fromOther} {
		if len(got) != 1 || got[0].ID != first[0].ID || !bytes.Equal(got[0].Body, first[0].Body) {
			t.Fatalf("pending upload changed: %s, want %s", got[0].ID, first[0].ID)
		}
	}
	if rec := keysAccount(t, d.Machine); rec.Shared || len(rec.Account.OneTimeKeys()) != TargetOneTimeKeys {
		t.Fatal("keys published before the upload succeeded")
	}
	if err := other.MarkRequestAsSent(ctx, first[0].ID, RequestKeysUpload, s.answer(d, first[0])); err != nil {
		t.Fatal(err)
	}
	rec := keysAccount(t, d.Machine)
	if _, fb := rec.Account.UnpublishedFallbackKey(); !rec.Shared || len(rec.Account.OneTimeKeys()) != 0 || fb {
		t.Fatal("uploaded keys not marked as published")
	}
	if c := keysServerCounts(t, d.Machine); c.OneTimeKeys != TargetOneTimeKeys || c.FallbackKeyUsed {
		t.Fatalf("counts %+v", c)
	}
	if got := keysRequestsOf(t, d.Machine, RequestKeysUpload); len(got) != 0 {
		t.Fatalf("another upload after success: %s", got[0].Body)
	}
	// Marking it again (the other process's retry) changes nothing.
	before := storeDump(t, d.path)
	if err := d.MarkRequestAsSent(ctx, first[0].ID, RequestKeysUpload, s.answer(d, first[0])); err != nil {
		t.Fatal(err)
	}
	if storeDump(t, d.path) != before {
		t.Fatal("a second mark changed the store")
	}
}

// The server's counts decide what is generated: one-time keys up to
// TargetOneTimeKeys and a fallback key when the server has given its
// fallback key out; none of them while an upload is pending.
func TestKeysUploadGeneratesOnlyWhatIsNeeded(t *testing.T) {
	s := newKeysServer(t)
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	s.flush(d)
	for range 20 {
		s.claim("@alice:example.org", "ALICE")
	}
	s.receiveSync(d, nil, nil)
	ups := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	var body keysUploadBody
	json.Unmarshal(ups[0].Body, &body)
	if len(ups) != 1 || len(body.OneTimeKeys) != 20 || body.FallbackKeys != nil || body.DeviceKeys != nil {
		t.Fatalf("top-up upload: %d one-time keys, fallback %v, device keys %v", len(body.OneTimeKeys), body.FallbackKeys != nil, body.DeviceKeys != nil)
	}
	// A lower count while the upload is pending generates nothing more.
	for range 10 {
		s.claim("@alice:example.org", "ALICE")
	}
	s.receiveSync(d, nil, nil)
	again := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	if len(again) != 1 || again[0].ID != ups[0].ID || len(keysAccount(t, d.Machine).Account.OneTimeKeys()) != 20 {
		t.Fatal("keys generated while an upload was pending")
	}
	s.flush(d)
	// The server now holds 40 + 20: nothing is due.
	s.receiveSync(d, nil, nil)
	if got := keysRequestsOf(t, d.Machine, RequestKeysUpload); len(got) != 0 {
		t.Fatalf("upload with %d keys on the server", len(s.otks["@alice:example.org"]["ALICE"]))
	}
	// Use every key and the fallback key up.
	oldFallback, _ := keysAccount(t, d.Machine).Account.FallbackKey()
	for range 61 {
		s.claim("@alice:example.org", "ALICE")
	}
	s.receiveSync(d, nil, nil)
	ups = keysRequestsOf(t, d.Machine, RequestKeysUpload)
	body = keysUploadBody{}
	json.Unmarshal(ups[0].Body, &body)
	newFallback, _ := keysAccount(t, d.Machine).Account.FallbackKey()
	if len(body.OneTimeKeys) != TargetOneTimeKeys || len(body.FallbackKeys) != 1 || newFallback.ID == oldFallback.ID {
		t.Fatalf("after the keys ran out: %d one-time keys, %d fallback keys", len(body.OneTimeKeys), len(body.FallbackKeys))
	}
	if _, ok := body.FallbackKeys["signed_curve25519:"+newFallback.ID.String()]; !ok {
		t.Fatal("the new fallback key is not the uploaded one")
	}
	// Counts not reported leave everything as it is.
	err := d.store.Update(t.Context(), "sync", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		before, _ := tx.ServerKeyCounts()
		if err := d.recordOneTimeKeyCounts(tx, nil, nil); err != nil {
			return err
		}
		if err := d.recordOneTimeKeyCounts(tx, map[string]int{"signed_curve25519": -5}, nil); err != nil {
			return err
		}
		if after, _ := tx.ServerKeyCounts(); after != before {
			t.Errorf("counts changed from %+v to %+v", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Over many rounds of claims and top-ups no key ID is ever uploaded twice
// (the server fails the test if one is), and IDs only grow.
func TestNoKeyIDUploadedTwice(t *testing.T) {
	s := newKeysServer(t)
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	uploaded := map[string]bool{}
	for round := range 8 {
		reqs := keysRequestsOf(t, d.Machine, RequestKeysUpload)
		for _, r := range reqs {
			var body keysUploadBody
			json.Unmarshal(r.Body, &body)
			for name := range body.OneTimeKeys {
				if uploaded[name] {
					t.Fatalf("round %d: %s uploaded twice", round, name)
				}
				uploaded[name] = true
			}
		}
		s.flush(d)
		for range 7 + 13*round {
			s.claim("@alice:example.org", "ALICE")
		}
		s.receiveSync(d, nil, nil)
	}
	if len(uploaded) < 2*TargetOneTimeKeys {
		t.Fatalf("only %d keys uploaded", len(uploaded))
	}
}

// A key generated after the upload was queued is not marked as published
// with it, and goes out with the next upload.
func TestKeysMarkedPublishedAreExactlyTheUploadedOnes(t *testing.T) {
	ctx := context.Background()
	s := newKeysServer(t)
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	ups := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	var extra olm.OneTimeKey
	err := d.store.Update(ctx, "extra key", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		rec, err := tx.Account()
		if err != nil {
			return err
		}
		if err := rec.Account.GenerateOneTimeKeys(rand.Reader, 1); err != nil {
			return err
		}
		extra = rec.Account.OneTimeKeys()[0]
		return tx.PutAccount(rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.MarkRequestAsSent(ctx, ups[0].ID, RequestKeysUpload, s.answer(d, ups[0])); err != nil {
		t.Fatal(err)
	}
	acct := keysAccount(t, d.Machine).Account
	if left := acct.OneTimeKeys(); len(left) != 1 || left[0] != extra {
		t.Fatalf("unpublished after the upload: %v, want only %v", left, extra)
	}
	if len(acct.AllOneTimeKeys()) != TargetOneTimeKeys+1 {
		t.Fatalf("%d keys held", len(acct.AllOneTimeKeys()))
	}
	if _, ok := acct.UnpublishedFallbackKey(); ok {
		t.Fatal("the uploaded fallback key is still unpublished")
	}
	next := keysRequestsOf(t, d.Machine, RequestKeysUpload)
	var body keysUploadBody
	json.Unmarshal(next[0].Body, &body)
	if len(body.OneTimeKeys) != 1 || body.OneTimeKeys["signed_curve25519:"+extra.ID.String()] == nil {
		t.Fatalf("next upload carries %d keys", len(body.OneTimeKeys))
	}
}

// Two processes on one store (an app and its notification extension), each
// syncing and sending its requests while the other does: one upload is
// pending at a time, both may send it, and no key ID ever goes out in two
// different uploads or with other content (the server would refuse it).
func TestTwoProcessesNeverUploadAKeyIDTwice(t *testing.T) {
	s := newKeysServer(t)
	app := newKeysDevice(t, "@alice:example.org", "ALICE")
	nse, err := Open(t.Context(), openStore(t, app.path, "nse"), "@alice:example.org", "ALICE", Options{})
	if err != nil {
		t.Fatal(err)
	}
	procs := []*keysDevice{app, {Machine: nse, path: app.path}}
	var mu sync.Mutex                // guards s and carriedBy
	carriedBy := map[string]string{} // key name → the upload request that carried it
	errs := make(chan error, len(procs))
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() {
			for round := range 10 {
				mu.Lock()
				for range round % 4 * 5 {
					s.claim("@alice:example.org", "ALICE")
				}
				counts, unused := s.sync(p)
				mu.Unlock()
				err := p.store.Update(t.Context(), "sync", cryptostore.Normal, func(tx *cryptostore.Tx) error {
					return p.recordOneTimeKeyCounts(tx, counts, unused)
				})
				if err != nil {
					errs <- err
					return
				}
				reqs, err := p.OutgoingRequests(t.Context())
				if err != nil {
					errs <- err
					return
				}
				for _, r := range reqs {
					mu.Lock()
					var body keysUploadBody
					json.Unmarshal(r.Body, &body)
					for name := range body.OneTimeKeys {
						if other, ok := carriedBy[name]; ok && other != r.ID {
							mu.Unlock()
							errs <- fmt.Errorf("%s in uploads %s and %s", name, other, r.ID)
							return
						}
						carriedBy[name] = r.ID
					}
					resp := s.answer(p, r)
					mu.Unlock()
					if err := p.MarkRequestAsSent(t.Context(), r.ID, r.Type, resp); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(carriedBy) <= TargetOneTimeKeys {
		t.Fatalf("only %d keys uploaded", len(carriedBy))
	}
}
