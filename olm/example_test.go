package olm_test

import (
	"crypto/rand"
	"fmt"

	"github.com/xolm/xolm/olm"
)

// Alice starts a session with Bob using one of his one-time keys; Bob creates
// his side from her first message and replies.
func Example() {
	alice, _ := olm.NewAccount(rand.Reader)
	bob, _ := olm.NewAccount(rand.Reader)

	// Bob publishes one-time keys; Alice claims one from the server.
	_ = bob.GenerateOneTimeKeys(rand.Reader, 1)
	bobIdentity := bob.IdentityKeys().Curve25519
	claimed := bob.OneTimeKeys()[0]
	bob.MarkKeysAsPublished()

	out, _ := alice.NewOutboundSession(rand.Reader, bobIdentity, claimed.Key)
	typ, body, _ := out.Encrypt(rand.Reader, []byte("Hello, Bob"))
	fmt.Println("Alice sends type", typ)

	// Bob receives a pre-key message, checks that it comes from the key he
	// expects, and creates his side of the session.
	pre, err := olm.ParsePreKeyMessage(body)
	if err != nil {
		panic(err)
	}
	aliceIdentity := alice.IdentityKeys().Curve25519
	in, plaintext, err := bob.NewInboundSession(&aliceIdentity, pre)
	if err != nil {
		panic(err)
	}
	fmt.Printf("Bob reads %q; one-time keys left: %d\n", plaintext, len(bob.OneTimeKeys()))

	typ, body, _ = in.Encrypt(rand.Reader, []byte("Hello, Alice"))
	fmt.Println("Bob replies with type", typ)
	reply, err := out.Decrypt(typ, body)
	if err != nil {
		panic(err)
	}
	fmt.Printf("Alice reads %q; same session: %t\n", reply, in.ID() == out.ID())

	// Output:
	// Alice sends type 0
	// Bob reads "Hello, Bob"; one-time keys left: 0
	// Bob replies with type 1
	// Alice reads "Hello, Alice"; same session: true
}

// A pre-key message for a session Bob already has is decrypted with that
// session: Alice keeps sending pre-key messages until she hears from Bob.
func ExampleSession_MatchesInboundSession() {
	alice, _ := olm.NewAccount(rand.Reader)
	bob, _ := olm.NewAccount(rand.Reader)
	_ = bob.GenerateOneTimeKeys(rand.Reader, 1)
	out, _ := alice.NewOutboundSession(rand.Reader, bob.IdentityKeys().Curve25519, bob.OneTimeKeys()[0].Key)

	_, first, _ := out.Encrypt(rand.Reader, []byte("one"))
	pre, _ := olm.ParsePreKeyMessage(first)
	in, _, _ := bob.NewInboundSession(nil, pre)

	typ, second, _ := out.Encrypt(rand.Reader, []byte("two"))
	pre, _ = olm.ParsePreKeyMessage(second)
	if in.MatchesInboundSession(nil, pre) {
		plaintext, err := in.Decrypt(typ, second)
		fmt.Printf("%q %v\n", plaintext, err)
	}
	// Output: "two" <nil>
}

// Accounts and sessions are stored encrypted, bound to where they are kept.
func ExampleAccount_Pickle() {
	account, _ := olm.NewAccount(rand.Reader)
	var key [32]byte
	_, _ = rand.Read(key[:])
	ad := []byte("accounts/DEVICEID/v1")

	blob := account.Pickle(&key, ad)
	restored, err := olm.UnpickleAccount(blob, &key, ad)
	fmt.Println(err == nil && restored.IdentityKeys() == account.IdentityKeys())

	_, err = olm.UnpickleAccount(blob, &key, []byte("accounts/OTHER/v1"))
	fmt.Println(err)
	// Output:
	// true
	// olm: unpickle account: olm: pickle authentication failed
}
