"use strict";
// A libolm peer: @matrix-org/olm (libolm 3.2 compiled to wasm) behind the
// JSON-lines protocol of rpc.cjs. Accounts and sessions live here and are
// named by handles; keys, messages and pickles cross as libolm's own base64
// strings, plaintexts as UTF-8 strings.
//
// Randomness can be fixed: libolm in Node draws every random byte through
// require("crypto").randomBytes, looked up at call time, so the function is
// replaced (before the library loads) by one that serves queued bytes first.
// With the queue filled by rand.push, libolm's output is a pure function of
// those bytes.

const crypto = require("node:crypto");
const { PeerError, Handles, serve, str, int, bytes, text } = require("./rpc.cjs");

const realRandomBytes = crypto.randomBytes;
const rand = { queue: Buffer.alloc(0), mode: "real" };

// In "real" mode an empty queue falls back to real randomness; in "fixed" mode
// it is an error. A request larger than a non-empty queue is always an error:
// a transcript that supplies too few bytes is a bug in the transcript. A
// request for no bytes (libolm makes one for every Olm message that does not
// start a new chain) takes nothing, in either mode.
crypto.randomBytes = function randomBytesFromQueue(size, callback) {
    if (callback === undefined && size === 0) {
        return Buffer.alloc(0);
    }
    if (callback !== undefined || rand.queue.length === 0) {
        if (callback === undefined && rand.mode === "fixed") {
            throw new PeerError(`fixed randomness: ${size} bytes requested, queue empty`, "RANDOMNESS_EXHAUSTED");
        }
        return realRandomBytes.call(crypto, size, callback);
    }
    if (rand.queue.length < size) {
        throw new PeerError(`fixed randomness: ${size} bytes requested, ${rand.queue.length} queued`, "RANDOMNESS_EXHAUSTED");
    }
    const out = Buffer.from(rand.queue.subarray(0, size));
    rand.queue = rand.queue.subarray(size);
    return out;
};

const Olm = require("@matrix-org/olm");
const handles = new Handles();

function account(p) {
    return handles.get("account", str(p, "account"));
}

function session(p) {
    return handles.get("session", str(p, "session"));
}

function outboundGroup(p) {
    return handles.get("outbound_group", str(p, "session"));
}

function inboundGroup(p) {
    return handles.get("inbound_group", str(p, "session"));
}

// created wraps a fresh library object: on failure it is freed, on success it
// gets a handle.
function created(kind, object, init) {
    try {
        init(object);
    } catch (e) {
        object.free();
        throw e;
    }
    return handles.add(kind, object);
}

const methods = {
    "rand.push": (p) => {
        rand.queue = Buffer.concat([rand.queue, bytes(p, "bytes")]);
        return rand.queue.length;
    },
    "rand.mode": (p) => {
        const mode = str(p, "mode");
        if (mode !== "fixed" && mode !== "real") {
            throw new PeerError(`rand.mode: want "fixed" or "real", got ${JSON.stringify(mode)}`, "BAD_PARAMS");
        }
        rand.mode = mode;
        return null;
    },
    "rand.remaining": () => rand.queue.length,
    "rand.reset": () => {
        rand.queue = Buffer.alloc(0);
        rand.mode = "real";
        return null;
    },

    "version": () => Olm.get_library_version().join("."),
    "free": (p) => {
        handles.remove(str(p, "handle")).free();
        return null;
    },

    "account.create": () => created("account", new Olm.Account(), (a) => a.create()),
    "account.unpickle": (p) => created("account", new Olm.Account(), (a) => a.unpickle(text(p, "key"), str(p, "pickle"))),
    "account.pickle": (p) => account(p).pickle(text(p, "key")),
    "account.identity_keys": (p) => JSON.parse(account(p).identity_keys()),
    "account.generate_one_time_keys": (p) => account(p).generate_one_time_keys(int(p, "count")),
    "account.one_time_keys": (p) => JSON.parse(account(p).one_time_keys()),
    "account.max_number_of_one_time_keys": (p) => account(p).max_number_of_one_time_keys(),
    "account.mark_keys_as_published": (p) => account(p).mark_keys_as_published(),
    "account.generate_fallback_key": (p) => account(p).generate_fallback_key(),
    "account.fallback_key": (p) => JSON.parse(account(p).fallback_key()),
    "account.unpublished_fallback_key": (p) => JSON.parse(account(p).unpublished_fallback_key()),
    "account.forget_old_fallback_key": (p) => account(p).forget_old_fallback_key(),
    "account.sign": (p) => account(p).sign(text(p, "message")),
    "account.remove_one_time_keys": (p) => account(p).remove_one_time_keys(session(p)),

    "session.create_outbound": (p) =>
        created("session", new Olm.Session(), (s) => s.create_outbound(account(p), str(p, "identity_key"), str(p, "one_time_key"))),
    "session.create_inbound": (p) => created("session", new Olm.Session(), (s) => s.create_inbound(account(p), str(p, "body"))),
    "session.create_inbound_from": (p) =>
        created("session", new Olm.Session(), (s) => s.create_inbound_from(account(p), str(p, "identity_key"), str(p, "body"))),
    "session.unpickle": (p) => created("session", new Olm.Session(), (s) => s.unpickle(text(p, "key"), str(p, "pickle"))),
    "session.pickle": (p) => session(p).pickle(text(p, "key")),
    "session.session_id": (p) => session(p).session_id(),
    "session.has_received_message": (p) => session(p).has_received_message(),
    "session.matches_inbound": (p) => session(p).matches_inbound(str(p, "body")),
    "session.matches_inbound_from": (p) => session(p).matches_inbound_from(str(p, "identity_key"), str(p, "body")),
    "session.encrypt": (p) => session(p).encrypt(str(p, "plaintext")),
    "session.decrypt": (p) => session(p).decrypt(int(p, "type"), str(p, "body")),
    "session.describe": (p) => session(p).describe(),

    "outbound_group.create": () => created("outbound_group", new Olm.OutboundGroupSession(), (s) => s.create()),
    "outbound_group.unpickle": (p) =>
        created("outbound_group", new Olm.OutboundGroupSession(), (s) => s.unpickle(text(p, "key"), str(p, "pickle"))),
    "outbound_group.pickle": (p) => outboundGroup(p).pickle(text(p, "key")),
    "outbound_group.session_id": (p) => outboundGroup(p).session_id(),
    "outbound_group.session_key": (p) => outboundGroup(p).session_key(),
    "outbound_group.message_index": (p) => outboundGroup(p).message_index(),
    "outbound_group.encrypt": (p) => outboundGroup(p).encrypt(str(p, "plaintext")),

    "inbound_group.create": (p) => created("inbound_group", new Olm.InboundGroupSession(), (s) => s.create(str(p, "session_key"))),
    "inbound_group.import_session": (p) =>
        created("inbound_group", new Olm.InboundGroupSession(), (s) => s.import_session(str(p, "session_key"))),
    "inbound_group.unpickle": (p) =>
        created("inbound_group", new Olm.InboundGroupSession(), (s) => s.unpickle(text(p, "key"), str(p, "pickle"))),
    "inbound_group.pickle": (p) => inboundGroup(p).pickle(text(p, "key")),
    "inbound_group.session_id": (p) => inboundGroup(p).session_id(),
    "inbound_group.first_known_index": (p) => inboundGroup(p).first_known_index(),
    "inbound_group.export_session": (p) => inboundGroup(p).export_session(int(p, "message_index")),
    "inbound_group.decrypt": (p) => inboundGroup(p).decrypt(str(p, "body")),

    "utility.sha256": (p) => withUtility((u) => u.sha256(text(p, "input"))),
    "utility.ed25519_verify": (p) => withUtility((u) => u.ed25519_verify(str(p, "key"), text(p, "message"), str(p, "signature"))),
};

function withUtility(fn) {
    const u = new Olm.Utility();
    try {
        return fn(u);
    } finally {
        u.free();
    }
}

Olm.init().then(
    () => serve(methods),
    (e) => {
        process.stderr.write(`libolm failed to load: ${e && e.stack ? e.stack : e}\n`);
        process.exit(1);
    },
);
