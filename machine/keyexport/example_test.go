package keyexport_test

import (
	"crypto/rand"
	"fmt"

	"github.com/xolm/xolm/machine/keyexport"
	"github.com/xolm/xolm/megolm"
	"github.com/xolm/xolm/olm"
)

// Export one room key to a file and read it back.
func Example() {
	outbound, _ := megolm.NewOutboundGroupSession(rand.Reader)
	inbound, _ := megolm.NewInboundGroupSession(outbound.SessionKey())
	account, _ := olm.NewAccount(rand.Reader)

	sessions := []keyexport.ExportedSession{{
		Algorithm:  keyexport.MegolmAlgorithm,
		RoomID:     "!room:example.org",
		SessionID:  inbound.ID(),
		SenderKey:  account.IdentityKeys().Curve25519,
		SessionKey: inbound.ExportAtFirstKnownIndex(),
	}}
	data, err := keyexport.MarshalSessions(sessions)
	if err != nil {
		panic(err)
	}
	file, err := keyexport.Encrypt(data, "a long passphrase", keyexport.DefaultRounds, rand.Reader)
	if err != nil {
		panic(err)
	}

	data, err = keyexport.Decrypt(file, "a long passphrase")
	if err != nil {
		panic(err)
	}
	imported, err := keyexport.UnmarshalSessions(data)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(imported), "session for", imported[0].RoomID)
	fmt.Println(imported[0].SessionKey)
	// Output:
	// 1 session for !room:example.org
	// SessionKey{redacted}
}
