package megolm

// Ordering is the result of [InboundGroupSession.Compare]: how a copy of a
// session relates to another copy received from elsewhere (a room key, a
// forwarded key, a backup).
type Ordering int

// Orderings of two inbound sessions, following vodozemac's SessionOrdering.
const (
	// Equal: the same session known from the same index.
	Equal Ordering = iota
	// Better: the same session, known from a lower index, so it decrypts
	// everything the other does and more.
	Better
	// Worse: the same session, known from a higher index.
	Worse
	// Unconnected: different signing keys, or ratchets that do not lie on
	// one chain. Neither may replace the other.
	Unconnected
)

func (o Ordering) String() string {
	switch o {
	case Equal:
		return "equal"
	case Better:
		return "better"
	case Worse:
		return "worse"
	case Unconnected:
		return "unconnected"
	}
	return "Ordering(invalid)"
}

// Compare reports how s relates to other. Two copies are connected when they
// have the same signing key and the one with the lower first known index,
// advanced to the other's, gives the other's initial ratchet (compared in
// constant time). Of connected copies, the one with the lower first known
// index is better. Neither session is changed; the cost is one ratchet jump.
//
// Keep the better copy: a worse one never replaces it. Whether a copy is
// verified is a separate fact; [InboundGroupSession.Merge] keeps the better
// ratchet and the verification of either.
func (s *InboundGroupSession) Compare(other *InboundGroupSession) Ordering {
	if !s.connected(other) {
		return Unconnected
	}
	switch a, b := s.initial.counter, other.initial.counter; {
	case a < b:
		return Better
	case a > b:
		return Worse
	}
	return Equal
}

// connected reports whether both sessions are copies of one chain.
func (s *InboundGroupSession) connected(other *InboundGroupSession) bool {
	if s.signingKey != other.signingKey {
		return false
	}
	lower, higher := s, other
	if lower.initial.counter > higher.initial.counter {
		lower, higher = higher, lower
	}
	r := lower.initial
	r.advanceTo(higher.initial.counter)
	defer r.clear()
	return r.equal(&higher.initial)
}

// Merge combines two copies of one session: the result has the better copy's
// initial ratchet, the more advanced latest ratchet, and is verified if either
// copy is. It returns false, and nil, for unconnected sessions. Neither input
// is changed.
func (s *InboundGroupSession) Merge(other *InboundGroupSession) (*InboundGroupSession, bool) {
	var best, rest *InboundGroupSession
	switch s.Compare(other) {
	case Unconnected:
		return nil, false
	case Worse:
		best, rest = other, s
	default:
		best, rest = s, other
	}
	merged := best.Clone()
	if rest.latest.counter > merged.latest.counter {
		merged.latest = rest.latest
	}
	merged.verified = s.verified || other.verified
	return merged, true
}
