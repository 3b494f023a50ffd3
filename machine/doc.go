// Package machine is xolm's Matrix end-to-end encryption state machine,
// shaped like matrix-sdk-crypto's OlmMachine and free of I/O: it consumes
// sync data and HTTP responses and produces the requests to send.
//
// For most use cases, open a [cryptostore.Store] per process on the app's
// shared store file and a [Machine] over it; the main app and a notification
// extension can each do so at the same time. Every public method runs its
// protocol step as one transaction under the store's cross-process lease, so
// no process decrypts from a stale session, reuses a one-time key, or wedges
// a session because another process moved the state on.
//
// # Flow
//
//   - [Machine.ReceiveSyncChanges] takes a sync response's to-device events,
//     one-time key counts, unused fallback key types and device list changes,
//     and returns each to-device event decrypted or with a typed reason.
//   - [Machine.OutgoingRequests] lists the /keys/upload, /keys/query,
//     /keys/claim and /sendToDevice requests to send; report each response
//     with [Machine.MarkRequestAsSent]. Request IDs are stable: a retried
//     request is the same request.
//   - [Machine.ShareRoomKey], [Machine.EncryptRoomEvent] and
//     [Machine.DecryptRoomEvent] handle room events (m.megolm.v1.aes-sha2).
//
// Wire formats are the Matrix specification's: m.olm.v1.curve25519-aes-sha2,
// m.megolm.v1.aes-sha2, m.room_key, m.forwarded_room_key and m.dummy.
package machine
