package olm

import (
	"fmt"

	"github.com/xolm/xolm/internal/libolmpickle"
)

// libolm's session pickle versions: 1 is what libolm 3.2 writes; 0x80000001
// was written by its logging branch and adds a dummy u32 after the ratchet.
const (
	libolmSessionVersion        = 1
	libolmSessionVersionLogging = 0x80000001
)

// LibolmPickle exports the session in libolm's pickle format (session
// version 1), encrypted under key as libolm does (any length, possibly
// empty). libolm, vodozemac's from_libolm_pickle and [ImportLibolmSession]
// read it. The format has a deterministic IV per key: do not use it for
// storage where [Session.Pickle] will do.
func (s *Session) LibolmPickle(key []byte) string {
	var e libolmpickle.Encoder
	e.U32(libolmSessionVersion)
	s.encode(&e)
	raw := e.Result()
	defer clear(raw)
	return libolmpickle.Seal(key, raw)
}

// ImportLibolmSession reads a libolm session pickle of version 1 or
// 0x80000001 encrypted under key. Errors: [ErrPickleAuth], [ErrPickleFormat],
// *[PickleVersionError].
func ImportLibolmSession(pickle string, key []byte) (*Session, error) {
	raw, err := libolmpickle.Open(key, pickle)
	if err != nil {
		return nil, fmt.Errorf("olm: import libolm session: %w", openError(err))
	}
	defer clear(raw)
	d, v, err := versionedDecoder(raw)
	if err != nil {
		return nil, fmt.Errorf("olm: import libolm session: %w", err)
	}
	if v != libolmSessionVersion && v != libolmSessionVersionLogging {
		return nil, &PickleVersionError{Object: "session", Format: "libolm", Version: v}
	}
	s := decodeSession(d)
	if v == libolmSessionVersionLogging {
		d.U32("chain index")
	}
	if err := d.Finish(); err != nil {
		return nil, fmt.Errorf("olm: import libolm session: %w: %w", ErrPickleFormat, err)
	}
	return s, nil
}
