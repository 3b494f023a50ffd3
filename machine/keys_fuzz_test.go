package machine

import (
	"errors"
	"testing"

	"github.com/xolm/xolm/cryptostore"
)

// FuzzMarkRequestAsSent hands arbitrary responses to pending /keys/upload,
// /keys/query and /keys/claim requests. Properties: no panic; a response that
// is refused is a *ResponseError and leaves the store byte-identical with the
// request still pending; one that is accepted removes the request. Seeds are
// the test server's genuine answers and near misses of each.
func FuzzMarkRequestAsSent(f *testing.F) {
	s, alice, _ := keysPair(f)
	// One pending request of each kind.
	for range 10 {
		s.claim("@alice:example.org", "ALICE")
	}
	s.receiveSync(alice, []string{"@bob:example.org"}, nil)
	if _, err := alice.GetMissingSessions(f.Context(), []string{"@bob:example.org"}); err != nil {
		f.Fatal(err)
	}
	var pending [3]*Request
	for i, typ := range []RequestType{RequestKeysUpload, RequestKeysQuery, RequestKeysClaim} {
		reqs := keysRequestsOf(f, alice.Machine, typ)
		if len(reqs) != 1 {
			f.Fatalf("%d pending %s requests", len(reqs), typ)
		}
		pending[i] = reqs[0]
	}
	seeds := [3][]string{
		{`{"one_time_key_counts":{"signed_curve25519":50}}`, `{"one_time_key_counts":{}}`,
			`{"one_time_key_counts":{"signed_curve25519":1e3}}`, `{"one_time_key_counts":{"signed_curve25519":"5"}}`},
		{`{"device_keys":{}}`, `{"device_keys":{"@bob:example.org":{"BOB":1}}}`, `{"device_keys":{"@bob:example.org":null}}`,
			`{"device_keys":{"@bob:example.org":{"BOB":{"user_id":"@bob:example.org","device_id":"BOB","keys":{}}}}}`},
		{`{"one_time_keys":{}}`, `{"one_time_keys":{"@bob:example.org":{"BOB":{"signed_curve25519:AAAAAQ":{"key":"x"}}}}}`,
			`{"one_time_keys":{"@bob:example.org":{"BOB":{"signed_curve25519:AAAAAQ":"k"}}}}`, `{"one_time_keys":null}`},
	}
	for i, r := range pending {
		genuine := s.answer(alice, r)
		f.Add(uint8(i), []byte(genuine))
		f.Add(uint8(i), []byte(genuine[:len(genuine)/2]))
		for _, seed := range seeds[i] {
			f.Add(uint8(i), []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, response []byte) {
		r := pending[int(which)%len(pending)]
		before := storeDump(t, alice.path)
		err := alice.MarkRequestAsSent(t.Context(), r.ID, r.Type, response)
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("%s response %q: %v", r.Type, response, err)
			}
			if storeDump(t, alice.path) != before {
				t.Fatalf("refused %s response %q changed the store", r.Type, response)
			}
			return
		}
		if still := keysRequestsOf(t, alice.Machine, r.Type); len(still) != 0 && still[0].ID == r.ID {
			t.Fatalf("accepted %s response left the request pending", r.Type)
		}
		// Queue the same request again for the next input.
		err = alice.store.Update(t.Context(), "requeue", cryptostore.Normal, func(tx *cryptostore.Tx) error {
			return alice.queueRequest(tx, r)
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
