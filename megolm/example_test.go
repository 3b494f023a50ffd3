package megolm_test

import (
	"crypto/rand"
	"fmt"
	"log"

	"github.com/xolm/xolm/megolm"
)

// The sender creates a session and shares its key; the recipient creates the
// matching inbound session from it and decrypts.
func Example() {
	outbound, err := megolm.NewOutboundGroupSession(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	// Sent to each recipient device inside an Olm-encrypted m.room_key event
	// (base64-encoded there).
	sessionKey := outbound.SessionKey()

	inbound, err := megolm.NewInboundGroupSession(sessionKey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same session:", inbound.ID() == outbound.ID())

	for _, text := range []string{"hello", "world"} {
		ciphertext, err := outbound.Encrypt([]byte(text))
		if err != nil {
			log.Fatal(err)
		}
		plaintext, index, err := inbound.Decrypt(ciphertext)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("message %d: %s\n", index, plaintext)
	}
	fmt.Println("next index:", outbound.MessageIndex())
	// Output:
	// same session: true
	// message 0: hello
	// message 1: world
	// next index: 2
}

// An inbound session can pass on what it knows from a given index; the copy
// cannot decrypt anything earlier.
func ExampleInboundGroupSession_Export() {
	outbound, _ := megolm.NewOutboundGroupSession(rand.Reader)
	inbound, _ := megolm.NewInboundGroupSession(outbound.SessionKey())
	first, _ := outbound.Encrypt([]byte("first"))
	second, _ := outbound.Encrypt([]byte("second"))

	exported, err := inbound.Export(1) // as in m.forwarded_room_key
	if err != nil {
		log.Fatal(err)
	}
	forwarded, err := megolm.ImportInboundGroupSession(exported)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first known index:", forwarded.FirstKnownIndex(), "verified:", forwarded.SigningKeyVerified())

	if _, _, err := forwarded.Decrypt(first); err != nil {
		fmt.Println(err)
	}
	plaintext, index, _ := forwarded.Decrypt(second)
	fmt.Printf("message %d: %s; verified: %v\n", index, plaintext, forwarded.SigningKeyVerified())
	fmt.Println("keep:", forwarded.Compare(inbound))
	// Output:
	// first known index: 1 verified: false
	// megolm: unknown message index 0 (the first known index is 1)
	// message 1: second; verified: true
	// keep: worse
}
