"use strict";
// Records libolm conversations as transcripts that xolm's replay tests
// (tests/interop) play back byte for byte, behind the JSON-lines protocol of
// rpc.cjs: "record" {scenario, out} runs one scenario of scenarios.cjs and
// writes its transcript, as JSON, to the file out.
//
// Every random byte libolm asks for comes from a stream fixed by the
// scenario's seed: SHA-256(seed ‖ counter) for counter = 0, 1, 2, … (a
// big-endian uint32, the seed as UTF-8), concatenated. The bytes each step
// draws are written into the step, so that a replay can hand the same bytes to
// xolm, and libolm's output is a pure function of them.
//
// A step is one call (or, for an inbound Olm session, the fixed sequence of
// calls a client makes) on named libolm objects: its op, its arguments, the
// random bytes it drew, its outcome class ("ok" or the class of libolm's
// error) and, when ok, its result exactly as libolm returned it.

const crypto = require("node:crypto");
const fs = require("node:fs");
const { PeerError, serve, str } = require("./rpc.cjs");

const realRandomBytes = crypto.randomBytes;

// drawing holds the stream and the bytes drawn by the step being recorded;
// it is null between steps, where libolm must not draw.
let drawing = null;

crypto.randomBytes = function recordedRandomBytes(size, callback) {
    if (callback !== undefined) {
        return realRandomBytes.call(crypto, size, callback);
    }
    if (drawing === null) {
        throw new PeerError(`${size} random bytes requested outside a recorded step`, "UNRECORDED_RANDOMNESS");
    }
    const out = drawing.stream.take(size);
    drawing.drawn.push(out);
    return out;
};

const Olm = require("@matrix-org/olm");
const olmPackage = require("@matrix-org/olm/package.json");
const { scenarios } = require("./scenarios.cjs");

// SeededStream is the byte stream described at the top of this file.
class SeededStream {
    constructor(seed) {
        this.seed = Buffer.from(seed, "utf8");
        this.counter = 0;
        this.pending = Buffer.alloc(0);
    }

    take(n) {
        const parts = [this.pending];
        let have = this.pending.length;
        while (have < n) {
            const counter = Buffer.alloc(4);
            counter.writeUInt32BE(this.counter++);
            const block = crypto.createHash("sha256").update(this.seed).update(counter).digest();
            parts.push(block);
            have += block.length;
        }
        const all = Buffer.concat(parts);
        this.pending = Buffer.from(all.subarray(n));
        return Buffer.from(all.subarray(0, n));
    }
}

// outcomes names the classes of the libolm errors that scenarios provoke.
const outcomes = new Map([
    ["OLM.BAD_MESSAGE_MAC", "bad_mac"],
    ["OLM.BAD_SIGNATURE", "bad_signature"],
    ["OLM.BAD_MESSAGE_KEY_ID", "missing_one_time_key"],
    ["OLM.UNKNOWN_MESSAGE_INDEX", "unknown_message_index"],
    ["OLM.BAD_MESSAGE_VERSION", "invalid_message"],
    ["OLM.BAD_MESSAGE_FORMAT", "invalid_message"],
    ["OLM.BAD_ACCOUNT_KEY", "bad_pickle_key"],
    // libolm's export of an inbound group session below its first known index
    // fails without naming a reason.
    ["OLM.UNKNOWN_ERROR", "unknown_error"],
]);

// Recorder runs the steps of one scenario against named libolm objects.
class Recorder {
    constructor(seed) {
        this.stream = new SeededStream(seed);
        this.objects = new Map();
        this.steps = [];
    }

    get(name) {
        const o = this.objects.get(name);
        if (o === undefined) throw new PeerError(`scenario names no object ${JSON.stringify(name)}`, "SCENARIO");
        return o;
    }

    // put runs init on a fresh object and names it, replacing (and freeing)
    // an object of that name; if init throws, the fresh object is freed.
    put(name, object, init) {
        try {
            init(object);
        } catch (e) {
            object.free();
            throw e;
        }
        this.objects.get(name)?.free();
        this.objects.set(name, object);
        return object;
    }

    // step runs op with args and records it. libolm's outcome must be expect,
    // so that a transcript never records an accident.
    step(op, args, expect = "ok") {
        const fn = operations[op];
        if (fn === undefined) throw new PeerError(`unknown op ${op}`, "SCENARIO");
        drawing = { stream: this.stream, drawn: [] };
        let result = null;
        let outcome = "ok";
        let random;
        try {
            result = fn(this, args) ?? null;
        } catch (e) {
            if (e instanceof PeerError) throw e;
            outcome = outcomes.get(e.message) ?? `unexpected error ${e.message}`;
        } finally {
            random = Buffer.concat(drawing.drawn);
            drawing = null;
        }
        if (outcome !== expect) {
            throw new PeerError(`step ${this.steps.length} ${op}: libolm's outcome is ${outcome}, want ${expect}`, "SCENARIO");
        }
        const step = { op, args };
        if (random.length > 0) step.random = random.toString("base64");
        step.outcome = outcome;
        if (outcome === "ok") step.result = result;
        this.steps.push(step);
        return result;
    }

    free() {
        for (const o of this.objects.values()) o.free();
        this.objects.clear();
    }
}

// operations are the steps a scenario can take. Results are libolm's return
// values unchanged: JSON documents stay strings, so that their bytes count.
const operations = {
    "account.create": (r, a) => void r.put(a.account, new Olm.Account(), (x) => x.create()),
    "account.unpickle": (r, a) => void r.put(a.account, new Olm.Account(), (x) => x.unpickle(a.key, a.pickle)),
    "account.pickle": (r, a) => r.get(a.account).pickle(a.key),
    "account.identity_keys": (r, a) => r.get(a.account).identity_keys(),
    "account.generate_one_time_keys": (r, a) => void r.get(a.account).generate_one_time_keys(a.count),
    "account.one_time_keys": (r, a) => r.get(a.account).one_time_keys(),
    "account.mark_keys_as_published": (r, a) => void r.get(a.account).mark_keys_as_published(),
    "account.generate_fallback_key": (r, a) => void r.get(a.account).generate_fallback_key(),
    "account.fallback_key": (r, a) => r.get(a.account).fallback_key(),
    "account.unpublished_fallback_key": (r, a) => r.get(a.account).unpublished_fallback_key(),
    "account.forget_old_fallback_key": (r, a) => void r.get(a.account).forget_old_fallback_key(),
    "account.sign": (r, a) => r.get(a.account).sign(a.message),

    "session.create_outbound": (r, a) => {
        const s = r.put(a.session, new Olm.Session(), (x) => x.create_outbound(r.get(a.account), a.identity_key, a.one_time_key));
        return s.session_id();
    },
    // An inbound session is created, checked against its message, cleared of
    // its one-time key (not for a fallback key, which libolm keeps) and used
    // to decrypt the message: what a client does, and what xolm's
    // NewInboundSession does in one call.
    "session.create_inbound": (r, a) => {
        const account = r.get(a.account);
        const s = r.put(a.session, new Olm.Session(), (x) => x.create_inbound(account, a.body));
        if (!s.matches_inbound(a.body)) throw new PeerError("inbound session does not match its message", "SCENARIO");
        if (a.remove_one_time_key) account.remove_one_time_keys(s);
        return { session_id: s.session_id(), plaintext: s.decrypt(0, a.body) };
    },
    "session.unpickle": (r, a) => void r.put(a.session, new Olm.Session(), (x) => x.unpickle(a.key, a.pickle)),
    "session.pickle": (r, a) => r.get(a.session).pickle(a.key),
    "session.session_id": (r, a) => r.get(a.session).session_id(),
    "session.has_received_message": (r, a) => r.get(a.session).has_received_message(),
    "session.matches_inbound": (r, a) => r.get(a.session).matches_inbound(a.body),
    "session.encrypt": (r, a) => r.get(a.session).encrypt(a.plaintext),
    "session.decrypt": (r, a) => r.get(a.session).decrypt(a.type, a.body),

    "outbound_group.create": (r, a) => void r.put(a.session, new Olm.OutboundGroupSession(), (x) => x.create()),
    "outbound_group.unpickle": (r, a) =>
        void r.put(a.session, new Olm.OutboundGroupSession(), (x) => x.unpickle(a.key, a.pickle)),
    "outbound_group.pickle": (r, a) => r.get(a.session).pickle(a.key),
    "outbound_group.session_id": (r, a) => r.get(a.session).session_id(),
    "outbound_group.session_key": (r, a) => r.get(a.session).session_key(),
    "outbound_group.message_index": (r, a) => r.get(a.session).message_index(),
    "outbound_group.encrypt": (r, a) => r.get(a.session).encrypt(a.plaintext),

    "inbound_group.create": (r, a) => void r.put(a.session, new Olm.InboundGroupSession(), (x) => x.create(a.session_key)),
    "inbound_group.import_session": (r, a) =>
        void r.put(a.session, new Olm.InboundGroupSession(), (x) => x.import_session(a.session_key)),
    "inbound_group.unpickle": (r, a) =>
        void r.put(a.session, new Olm.InboundGroupSession(), (x) => x.unpickle(a.key, a.pickle)),
    "inbound_group.pickle": (r, a) => r.get(a.session).pickle(a.key),
    "inbound_group.session_id": (r, a) => r.get(a.session).session_id(),
    "inbound_group.first_known_index": (r, a) => r.get(a.session).first_known_index(),
    "inbound_group.export_session": (r, a) => r.get(a.session).export_session(a.message_index),
    "inbound_group.decrypt": (r, a) => r.get(a.session).decrypt(a.body),
};

function generator() {
    return `@matrix-org/olm ${olmPackage.version} (libolm ${Olm.get_library_version().join(".")} compiled to wasm)`;
}

// transcriptJSON writes the header one field per line and each step on a
// line of its own, so that a regenerated transcript diffs step by step.
function transcriptJSON(header, steps) {
    const lines = Object.entries(header).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
    const body = steps.map((s) => "    " + JSON.stringify(s)).join(",\n");
    return `{\n${lines.join("\n")}\n  "steps": [\n${body}\n  ]\n}\n`;
}

const methods = {
    "record": (p) => {
        const name = str(p, "scenario");
        const scenario = Object.hasOwn(scenarios, name) ? scenarios[name] : undefined;
        if (scenario === undefined) throw new PeerError(`unknown scenario ${JSON.stringify(name)}`, "BAD_PARAMS");
        const r = new Recorder(scenario.seed);
        try {
            scenario.run(r, scenario.pickleKey);
        } finally {
            r.free();
        }
        const header = {
            generator: generator(),
            scenario: name,
            description: scenario.description,
            seed: scenario.seed,
            randomness: "SHA-256(seed ‖ counter) for counter = 0, 1, 2, … as a big-endian uint32, the seed as UTF-8, concatenated; each step holds the bytes it drew (standard base64)",
            pickle_key: scenario.pickleKey,
        };
        fs.writeFileSync(str(p, "out"), transcriptJSON(header, r.steps));
        return { steps: r.steps.length, random_bytes: r.stream.counter * 32 - r.stream.pending.length };
    },
};

Olm.init().then(
    () => serve(methods),
    (e) => {
        process.stderr.write(`libolm failed to load: ${e && e.stack ? e.stack : e}\n`);
        process.exit(1);
    },
);
