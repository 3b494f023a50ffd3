package machine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/xolm/xolm/cryptostore"
)

// MaxUserIDLength bounds a user ID, as the spec does (255 bytes, "User
// Identifiers"). Longer IDs are refused wherever they come from.
const MaxUserIDLength = 255

// MaxDeviceIDLength bounds a device ID from the server. The spec sets no
// limit; homeservers generate IDs of ten or so characters, and 255 matches
// the bound on user IDs.
const MaxDeviceIDLength = 255

// ErrInvalidUserID reports a user ID that is not of the form @local:server,
// not valid UTF-8, or longer than MaxUserIDLength.
var ErrInvalidUserID = errors.New("machine: invalid user ID")

// validUserID reports whether u looks like a Matrix user ID. Only the shape
// matters here: the server is the authority on which users exist.
func validUserID(u string) bool {
	return len(u) <= MaxUserIDLength && strings.HasPrefix(u, "@") && strings.Contains(u, ":") && utf8.ValidString(u)
}

// validDeviceID reports whether d is a usable device ID.
func validDeviceID(d string) bool {
	return d != "" && len(d) <= MaxDeviceIDLength && utf8.ValidString(d)
}

// UpdateTrackedUsers starts tracking the device lists of users (typically
// the members of the encrypted rooms the client is in). A user not tracked
// yet is queried with the next /keys/query from [Machine.OutgoingRequests];
// users already tracked are left as they are. Tracked users whose devices
// change (sync's device_lists.changed) are queried again; those who leave
// (device_lists.left) stop being tracked.
func (m *Machine) UpdateTrackedUsers(ctx context.Context, users []string) error {
	for _, u := range users {
		if !validUserID(u) {
			return fmt.Errorf("machine: update tracked users: %w: %.64q", ErrInvalidUserID, u)
		}
	}
	err := m.store.Update(ctx, "machine: update tracked users", cryptostore.Normal, func(tx *cryptostore.Tx) error {
		tracked, err := trackedSet(tx)
		if err != nil {
			return err
		}
		for _, u := range users {
			if tracked[u] {
				continue
			}
			if err := tx.TrackUser(u, true); err != nil {
				return err
			}
			tracked[u] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("machine: update tracked users: %w", err)
	}
	return nil
}

// trackedSet returns every tracked user.
func trackedSet(tx *cryptostore.Tx) (map[string]bool, error) {
	users, err := tx.TrackedUsers(false)
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(users))
	for _, u := range users {
		set[u] = true
	}
	return set, nil
}

// markDevicesChanged applies a sync response's device_lists: tracked users
// in changed are marked for a new /keys/query, tracked users in left stop
// being tracked (their stored devices stay, for the events they sent).
// Users not tracked are ignored, so the work done is bounded by the tracked
// set, whatever the length of the lists; malformed IDs are ignored too. A
// pending query that covers a changed user is dropped: its answer may
// predate the change, and the next OutgoingRequests queries again. Errors
// are store failures only.
func (m *Machine) markDevicesChanged(tx *cryptostore.Tx, changed, left []string) error {
	if len(changed) == 0 && len(left) == 0 {
		return nil
	}
	tracked, err := trackedSet(tx)
	if err != nil {
		return err
	}
	dirty := map[string]bool{}
	for _, u := range changed {
		if tracked[u] && !dirty[u] {
			dirty[u] = true
			if err := tx.TrackUser(u, true); err != nil {
				return err
			}
		}
	}
	for _, u := range left {
		if tracked[u] {
			delete(tracked, u)
			delete(dirty, u)
			if err := tx.UntrackUser(u); err != nil {
				return err
			}
		}
	}
	if len(dirty) == 0 {
		return nil
	}
	pending, err := pendingRequests(tx)
	if err != nil {
		return err
	}
	for _, r := range pending {
		if r.Type != RequestKeysQuery {
			continue
		}
		users, err := queriedUsers(r)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(users, func(u string) bool { return dirty[u] }) {
			m.log.Debug().Str("request", r.ID).Msg("keys query superseded by a device list change")
			if _, err := tx.RemoveOutgoingRequest(r.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// queriedUsers returns the users a queued /keys/query asks for, sorted.
func queriedUsers(r *Request) ([]string, error) {
	var body keysQueryBody
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return nil, fmt.Errorf("machine: stored request %s: %w", r.ID, err)
	}
	users := make([]string, 0, len(body.DeviceKeys))
	for u := range body.DeviceKeys {
		users = append(users, u)
	}
	slices.Sort(users)
	return users, nil
}
