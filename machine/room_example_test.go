package machine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/xolm/xolm/cryptostore"
	"github.com/xolm/xolm/machine"
)

// A room's messages: share the room key with the members' devices, send the
// requests, encrypt, and decrypt what arrives. Here the only member is the
// sender, who decrypts her own message.
func Example_room() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "xolm-example")
	defer os.RemoveAll(dir)
	key := [32]byte{1} // keep the real one in the platform's keychain
	store, err := cryptostore.Open(ctx, filepath.Join(dir, "crypto.db"), cryptostore.Options{Key: &key, Role: "app"})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	m, err := machine.Open(ctx, store, "@alice:example.org", "ALICE", machine.Options{})
	if err != nil {
		panic(err)
	}

	const room = "!room:example.org"
	members := []string{"@alice:example.org"}
	requests, err := m.ShareRoomKey(ctx, room, members, machine.EncryptionSettings{})
	if err != nil {
		panic(err)
	}
	fmt.Println("requests to send first:", len(requests)) // no other device yet
	content, err := m.EncryptRoomEvent(ctx, room, "m.room.message", json.RawMessage(`{"msgtype":"m.text","body":"hello"}`))
	if err != nil {
		panic(err)
	}

	// The homeserver sends the event back in the room's timeline.
	event, _ := json.Marshal(map[string]any{"type": "m.room.encrypted", "event_id": "$1", "sender": "@alice:example.org",
		"origin_server_ts": 1700000000000, "content": json.RawMessage(content)})
	d, err := m.DecryptRoomEvent(ctx, room, event)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Type, string(d.Content), "index", d.MessageIndex, "from", d.SenderDevice.DeviceID)
	// Output:
	// requests to send first: 0
	// m.room.message {"msgtype":"m.text","body":"hello"} index 0 from ALICE
}
