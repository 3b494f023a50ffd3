package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/xolm/xolm/cryptostore"
)

func TestUpdateTrackedUsersRefusesInvalidIDs(t *testing.T) {
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	before := storeDump(t, d.path)
	for _, u := range []string{"", "bob", "@bob", "@" + strings.Repeat("b", MaxUserIDLength) + ":x", "@b\xff:x"} {
		if err := d.UpdateTrackedUsers(t.Context(), []string{"@carol:example.org", u}); !errors.Is(err, ErrInvalidUserID) {
			t.Fatalf("%q: %v", u, err)
		}
	}
	if storeDump(t, d.path) != before {
		t.Fatal("a refused call changed the store")
	}
}

// Tracking a user queries it once; tracking it again does not; a device list
// change queries it again, replacing a pending query that may predate the
// change; a user who left is no longer tracked and its answer is ignored;
// changes for users not tracked are ignored.
func TestDeviceListChanges(t *testing.T) {
	ctx := context.Background()
	s, alice, _ := keysPair(t)
	if err := alice.UpdateTrackedUsers(ctx, []string{"@bob:example.org", "@carol:example.org"}); err != nil {
		t.Fatal(err)
	}
	qs := keysRequestsOf(t, alice.Machine, RequestKeysQuery)
	if len(qs) != 1 || !slices.Equal(keysQueried(t, qs[0]), []string{"@carol:example.org"}) {
		t.Fatalf("queries %v", qs)
	}
	// bob's devices change while carol's query is in flight: carol is
	// still covered, bob gets a query of his own.
	s.receiveSync(alice, []string{"@bob:example.org", "@mallory:example.org"}, nil)
	qs2 := keysRequestsOf(t, alice.Machine, RequestKeysQuery)
	if len(qs2) != 2 || qs2[0].ID != qs[0].ID || !slices.Equal(keysQueried(t, qs2[1]), []string{"@bob:example.org"}) {
		t.Fatalf("queries after bob changed: %v", qs2)
	}
	// carol changes too: her pending query is dropped and she is queried
	// again; its late answer is a no-op.
	s.receiveSync(alice, []string{"@carol:example.org"}, nil)
	qs3 := keysRequestsOf(t, alice.Machine, RequestKeysQuery)
	if len(qs3) != 2 || slices.ContainsFunc(qs3, func(r *Request) bool { return r.ID == qs[0].ID }) {
		t.Fatalf("queries after carol changed: %v", qs3)
	}
	if err := alice.MarkRequestAsSent(ctx, qs[0].ID, RequestKeysQuery, s.answer(alice, qs[0])); err != nil {
		t.Fatal(err)
	}
	if dirty := keysDirty(t, alice.Machine); !slices.Equal(dirty, []string{"@bob:example.org", "@carol:example.org"}) {
		t.Fatalf("dirty after a superseded answer: %v", dirty)
	}
	// bob leaves before his answer comes: it is ignored, his devices stay.
	s.receiveSync(alice, nil, []string{"@bob:example.org", "@mallory:example.org"})
	s.devices["@bob:example.org"] = map[string]json.RawMessage{}
	s.flush(alice)
	if len(keysDevices(t, alice.Machine, "@bob:example.org")) != 1 {
		t.Fatal("an answer for a user no longer tracked was applied")
	}
	var tracked []string
	alice.store.View(ctx, "tracked", func(tx *cryptostore.Tx) error {
		tracked, _ = tx.TrackedUsers(false)
		return nil
	})
	if !slices.Equal(tracked, []string{"@carol:example.org"}) {
		t.Fatalf("tracked %v", tracked)
	}
}

func keysQueried(t testing.TB, r *Request) []string {
	t.Helper()
	users, err := queriedUsers(r)
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// Many dirty users are split over requests of at most MaxUsersPerKeysQuery.
func TestKeysQueryChunks(t *testing.T) {
	d := newKeysDevice(t, "@alice:example.org", "ALICE")
	users := make([]string, MaxUsersPerKeysQuery+3)
	for i := range users {
		users[i] = fmt.Sprintf("@u%03d:example.org", i)
	}
	if err := d.UpdateTrackedUsers(t.Context(), users); err != nil {
		t.Fatal(err)
	}
	qs := keysRequestsOf(t, d.Machine, RequestKeysQuery)
	var all []string
	for _, q := range qs {
		got := keysQueried(t, q)
		if len(got) > MaxUsersPerKeysQuery {
			t.Fatalf("%d users in one query", len(got))
		}
		all = append(all, got...)
	}
	slices.Sort(all)
	if len(qs) != 2 || !slices.Equal(all, users) {
		t.Fatalf("%d queries for %d of %d users", len(qs), len(all), len(users))
	}
}
