"use strict";
// The conversations that record.cjs records. Each scenario drives a Recorder
// (see record.cjs) step by step; r.step(op, args, expect) returns libolm's
// result, which later steps use as real clients would (keys claimed from the
// JSON, message bodies passed on). Every step states its expected outcome.

// flipBit returns body (unpadded base64) with one bit flipped in the byte at
// offset, counted from the end when negative.
function flipBit(body, offset) {
    const b = Buffer.from(body, "base64");
    b[offset < 0 ? b.length + offset : offset] ^= 0x01;
    return b.toString("base64").replace(/=+$/, "");
}

function only(object) {
    const values = Object.values(object);
    if (values.length !== 1) throw new Error(`want one key, got ${values.length}`);
    return values[0];
}

// olm: two accounts, a session started from a one-time key with several
// pre-key messages before the reply, ratchet turnovers both ways, messages out
// of order, failures (replay, forgery, used and forgotten keys), sessions from
// the current and the previous fallback key, and pickles throughout.
function olm(r, key) {
    r.step("account.create", { account: "alice" });
    const aliceKeys = JSON.parse(r.step("account.identity_keys", { account: "alice" }));
    r.step("account.create", { account: "bob" });
    const bobKeys = JSON.parse(r.step("account.identity_keys", { account: "bob" }));

    r.step("account.generate_one_time_keys", { account: "bob", count: 5 });
    const otks = JSON.parse(r.step("account.one_time_keys", { account: "bob" })).curve25519;
    r.step("account.generate_fallback_key", { account: "bob" });
    const fallback = only(JSON.parse(r.step("account.unpublished_fallback_key", { account: "bob" })).curve25519);
    r.step("account.fallback_key", { account: "bob" });
    r.step("account.pickle", { account: "bob", key });
    r.step("account.mark_keys_as_published", { account: "bob" });
    r.step("account.one_time_keys", { account: "bob" });
    r.step("account.unpublished_fallback_key", { account: "bob" });
    r.step("account.fallback_key", { account: "bob" });
    r.step("account.sign", { account: "alice", message: "a message to sign" });
    r.step("account.sign", { account: "bob", message: '{"device_id":"BOB","keys":{"ed25519:BOB":"…"},"user_id":"@bob:example.org"}' });
    r.step("account.pickle", { account: "alice", key });
    r.step("account.pickle", { account: "alice", key: "" });

    // Alice claims Bob's third one-time key and sends three pre-key messages.
    r.step("session.create_outbound",
        { account: "alice", session: "alice-bob", identity_key: bobKeys.curve25519, one_time_key: otks["AAAAAw"] });
    const pre = [];
    for (const text of ["hello bob", "are you there?", "third pre-key message, ünïcödé ☃"]) {
        pre.push(r.step("session.encrypt", { session: "alice-bob", plaintext: text }));
    }
    r.step("session.has_received_message", { session: "alice-bob" });
    r.step("session.pickle", { session: "alice-bob", key });

    // Bob receives the second one first, then the others.
    r.step("session.create_inbound", { account: "bob", session: "bob-alice", body: pre[1].body, remove_one_time_key: true });
    r.step("session.matches_inbound", { session: "bob-alice", body: pre[0].body });
    r.step("session.decrypt", { session: "bob-alice", type: pre[0].type, body: pre[0].body });
    r.step("session.decrypt", { session: "bob-alice", type: pre[2].type, body: pre[2].body });
    r.step("session.decrypt", { session: "bob-alice", type: pre[2].type, body: pre[2].body }, "bad_mac");
    r.step("session.create_inbound", { account: "bob", session: "bob-alice-2", body: pre[0].body, remove_one_time_key: true },
        "missing_one_time_key");
    r.step("account.pickle", { account: "bob", key });
    r.step("session.pickle", { session: "bob-alice", key });

    // Bob replies twice; Alice reads them out of order.
    const replies = [];
    for (const text of ["hi alice", "second reply"]) {
        replies.push(r.step("session.encrypt", { session: "bob-alice", plaintext: text }));
    }
    r.step("session.decrypt", { session: "alice-bob", type: 1, body: replies[1].body });
    r.step("session.has_received_message", { session: "alice-bob" });
    r.step("session.decrypt", { session: "alice-bob", type: 1, body: flipBit(replies[0].body, -1) }, "bad_mac");
    r.step("session.decrypt", { session: "alice-bob", type: 1, body: replies[0].body });
    r.step("session.pickle", { session: "alice-bob", key });

    // Ratchet turnovers: each round, each side sends after reading the other.
    let from = "alice-bob";
    let to = "bob-alice";
    for (let round = 0; round < 6; round++) {
        const sent = [];
        for (let i = 0; i <= round % 3; i++) {
            sent.push(r.step("session.encrypt", { session: from, plaintext: `round ${round} message ${i} from ${from}` }));
        }
        for (const m of sent) r.step("session.decrypt", { session: to, type: m.type, body: m.body });
        [from, to] = [to, from];
    }

    // Skipped messages: Bob reads the fourth and second of four, keeps the
    // first and third keys across a pickle, reads them after restoring.
    const late = [];
    for (let i = 0; i < 4; i++) late.push(r.step("session.encrypt", { session: "alice-bob", plaintext: `late ${i}` }));
    r.step("session.decrypt", { session: "bob-alice", type: 1, body: late[3].body });
    r.step("session.decrypt", { session: "bob-alice", type: 1, body: late[1].body });
    r.step("session.decrypt", { session: "bob-alice", type: 1, body: late[3].body }, "bad_mac");
    const bobSession = r.step("session.pickle", { session: "bob-alice", key });
    r.step("session.unpickle", { session: "bob-alice", key: "not the key", pickle: bobSession }, "bad_pickle_key");
    r.step("session.unpickle", { session: "bob-alice", key, pickle: bobSession });
    r.step("session.decrypt", { session: "bob-alice", type: 1, body: late[2].body });
    r.step("session.decrypt", { session: "bob-alice", type: 1, body: late[0].body });
    r.step("session.pickle", { session: "bob-alice", key: "" });

    // Alice restores her session and they go on.
    const aliceSession = r.step("session.pickle", { session: "alice-bob", key });
    r.step("session.unpickle", { session: "alice-bob", key, pickle: aliceSession });
    const back = r.step("session.encrypt", { session: "bob-alice", plaintext: "after the restore" });
    r.step("session.decrypt", { session: "alice-bob", type: back.type, body: back.body });
    const forth = r.step("session.encrypt", { session: "alice-bob", plaintext: "and back again" });
    r.step("session.decrypt", { session: "bob-alice", type: forth.type, body: forth.body });

    // Carol starts a session from Bob's fallback key, which Bob keeps.
    r.step("account.create", { account: "carol" });
    r.step("account.identity_keys", { account: "carol" });
    r.step("session.create_outbound",
        { account: "carol", session: "carol-bob", identity_key: bobKeys.curve25519, one_time_key: fallback });
    const fromCarol = r.step("session.encrypt", { session: "carol-bob", plaintext: "via the fallback key" });
    r.step("session.create_inbound",
        { account: "bob", session: "bob-carol", body: fromCarol.body, remove_one_time_key: false });
    const toCarol = r.step("session.encrypt", { session: "bob-carol", plaintext: "got it" });
    r.step("session.decrypt", { session: "carol-bob", type: toCarol.type, body: toCarol.body });

    // Bob rotates his fallback key; the previous one still starts sessions
    // until Bob forgets it. The account goes through a pickle on the way.
    r.step("account.generate_fallback_key", { account: "bob" });
    r.step("account.unpublished_fallback_key", { account: "bob" });
    r.step("account.fallback_key", { account: "bob" });
    const bobAccount = r.step("account.pickle", { account: "bob", key });
    r.step("account.unpickle", { account: "bob", key, pickle: bobAccount });
    r.step("account.identity_keys", { account: "bob" });
    r.step("account.create", { account: "dave" });
    r.step("session.create_outbound",
        { account: "dave", session: "dave-bob", identity_key: bobKeys.curve25519, one_time_key: fallback });
    const fromDave = r.step("session.encrypt", { session: "dave-bob", plaintext: "via the previous fallback key" });
    r.step("session.create_inbound",
        { account: "bob", session: "bob-dave", body: fromDave.body, remove_one_time_key: false });
    r.step("account.forget_old_fallback_key", { account: "bob" });
    r.step("account.pickle", { account: "bob", key });
    r.step("session.create_inbound",
        { account: "bob", session: "bob-dave-2", body: fromDave.body, remove_one_time_key: false }, "missing_one_time_key");

    // Bob's remaining one-time keys still work, for Alice's second device.
    r.step("account.create", { account: "alice2" });
    r.step("session.create_outbound",
        { account: "alice2", session: "alice2-bob", identity_key: bobKeys.curve25519, one_time_key: otks["AAAABQ"] });
    const fromAlice2 = r.step("session.encrypt", { session: "alice2-bob", plaintext: "from another device" });
    r.step("session.create_inbound",
        { account: "bob", session: "bob-alice2", body: fromAlice2.body, remove_one_time_key: true });
    r.step("account.pickle", { account: "bob", key });
    r.step("account.pickle", { account: "alice", key });
    r.step("session.pickle", { session: "alice-bob", key });
    r.step("session.pickle", { session: "bob-carol", key });
    r.step("session.session_id", { session: "alice-bob" });
    return aliceKeys;
}

// megolm: one outbound session, its session key at several indices, messages
// through index 130 (the index's varint grows at 128), in and out of order,
// exports and imports at an index, failures, and pickles throughout.
function megolm(r, key) {
    r.step("outbound_group.create", { session: "out" });
    r.step("outbound_group.session_id", { session: "out" });
    const key0 = r.step("outbound_group.session_key", { session: "out" });
    r.step("outbound_group.message_index", { session: "out" });
    r.step("outbound_group.pickle", { session: "out", key });

    r.step("inbound_group.create", { session: "in", session_key: key0 });
    r.step("inbound_group.session_id", { session: "in" });
    r.step("inbound_group.first_known_index", { session: "in" });
    r.step("inbound_group.pickle", { session: "in", key });

    const bodies = [];
    let key128;
    for (let i = 0; i < 130; i++) {
        if (i === 1 || i === 127 || i === 128) {
            r.step("outbound_group.message_index", { session: "out" });
            const k = r.step("outbound_group.session_key", { session: "out" });
            if (i === 128) key128 = k;
        }
        bodies.push(r.step("outbound_group.encrypt", { session: "out", plaintext: `message ${i}` }));
    }
    r.step("outbound_group.pickle", { session: "out", key });

    for (const i of [0, 1, 2, 126, 127, 128, 5, 129, 0]) {
        r.step("inbound_group.decrypt", { session: "in", body: bodies[i] });
    }
    r.step("inbound_group.decrypt", { session: "in", body: flipBit(bodies[4], -1) }, "bad_signature");
    r.step("inbound_group.decrypt", { session: "in", body: flipBit(bodies[4], 10) }, "bad_signature");
    r.step("inbound_group.decrypt", { session: "in", body: "AAAA" }, "invalid_message");
    r.step("inbound_group.pickle", { session: "in", key });

    // Exports at an index, imported: nothing before it decrypts.
    const export3 = r.step("inbound_group.export_session", { session: "in", message_index: 3 });
    r.step("inbound_group.export_session", { session: "in", message_index: 0 });
    const export128 = r.step("inbound_group.export_session", { session: "in", message_index: 128 });
    r.step("inbound_group.import_session", { session: "in3", session_key: export3 });
    r.step("inbound_group.session_id", { session: "in3" });
    r.step("inbound_group.first_known_index", { session: "in3" });
    r.step("inbound_group.pickle", { session: "in3", key });
    r.step("inbound_group.decrypt", { session: "in3", body: bodies[2] }, "unknown_message_index");
    r.step("inbound_group.decrypt", { session: "in3", body: bodies[3] });
    r.step("inbound_group.pickle", { session: "in3", key });
    r.step("inbound_group.export_session", { session: "in3", message_index: 2 }, "unknown_error");
    r.step("inbound_group.export_session", { session: "in3", message_index: 127 });

    r.step("inbound_group.import_session", { session: "in128", session_key: export128 });
    r.step("inbound_group.decrypt", { session: "in128", body: bodies[127] }, "unknown_message_index");
    r.step("inbound_group.decrypt", { session: "in128", body: bodies[129] });
    r.step("inbound_group.decrypt", { session: "in128", body: bodies[128] });
    r.step("inbound_group.pickle", { session: "in128", key: "" });

    // A session key shared at index 128.
    r.step("inbound_group.create", { session: "late", session_key: key128 });
    r.step("inbound_group.first_known_index", { session: "late" });
    r.step("inbound_group.decrypt", { session: "late", body: bodies[0] }, "unknown_message_index");
    r.step("inbound_group.decrypt", { session: "late", body: bodies[128] });
    r.step("inbound_group.pickle", { session: "late", key });

    // Both sessions go through pickles and carry on.
    const out = r.step("outbound_group.pickle", { session: "out", key });
    r.step("outbound_group.unpickle", { session: "out", key: "not the key", pickle: out }, "bad_pickle_key");
    r.step("outbound_group.unpickle", { session: "out", key, pickle: out });
    r.step("outbound_group.message_index", { session: "out" });
    const after = r.step("outbound_group.encrypt", { session: "out", plaintext: "after the restore, ünïcödé ☃" });
    const inbound = r.step("inbound_group.pickle", { session: "in", key });
    r.step("inbound_group.unpickle", { session: "in", key, pickle: inbound });
    r.step("inbound_group.decrypt", { session: "in", body: after });
    r.step("inbound_group.decrypt", { session: "in", body: bodies[64] });
    r.step("inbound_group.pickle", { session: "in", key });
    r.step("outbound_group.pickle", { session: "out", key: "" });
}

const scenarios = {
    olm: {
        seed: "xolm olm transcript 1",
        pickleKey: "transcript pickle key",
        description: "Alice and Bob: one-time and fallback keys, pre-key messages, replies, ratchet turnovers, " +
            "out-of-order and failed messages, sessions from the current and previous fallback key, pickles.",
        run: olm,
    },
    megolm: {
        seed: "xolm megolm transcript 1",
        pickleKey: "transcript pickle key",
        description: "One Megolm session: session keys at 0, 1, 127 and 128, messages 0–130, exports and " +
            "imports at an index, failures, pickles of outbound and inbound sessions.",
        run: megolm,
    },
};

module.exports = { scenarios };
