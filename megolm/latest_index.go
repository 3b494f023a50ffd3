package megolm

// LatestIndex returns the index of the session's latest ratchet: the highest
// message index it has decrypted, or FirstKnownIndex when it has decrypted
// none above that. A successful Decrypt changes a session only by moving this
// index up or by setting SigningKeyVerified, so a caller that sees neither
// change after a Decrypt knows the session is as it was and need not store
// it again.
func (s *InboundGroupSession) LatestIndex() uint32 { return s.latest.counter }
