"use strict";
// The JSON-lines protocol shared by the peers that xolm's Go tests drive
// (internal/nodepeer is the other end).
//
// Requests arrive one per line on stdin: {"id": n, "method": "…", "params": {…}}.
// Each gets exactly one reply line on stdout, in request order:
//   {"id": n, "ok": <result>}                            on success
//   {"id": n, "error": "<message>", "code": "<name>"}    on failure (code optional)
// Requests run one at a time, so a peer's state changes in exactly the order
// the test sent them. Anything a library prints goes to stderr, never to stdout.

const readline = require("node:readline");
const util = require("node:util");

for (const name of ["log", "info", "debug", "warn", "error", "trace", "dir"]) {
    console[name] = (...args) => process.stderr.write(util.format(...args) + "\n");
}

// PeerError carries an optional machine-readable code next to the message, for
// failures the Go side branches on (e.g. a Megolm decryption error code).
class PeerError extends Error {
    constructor(message, code) {
        super(message);
        this.code = code;
    }
}

// Handles maps string ids, as handed to Go, to live library objects. An id
// names its kind ("account/3"), so a handle of the wrong kind is an error
// rather than a confusing failure deep inside the library.
class Handles {
    constructor() {
        this.objects = new Map();
        this.next = 1;
    }

    add(kind, object) {
        const id = `${kind}/${this.next++}`;
        this.objects.set(id, { kind, object });
        return id;
    }

    get(kind, id) {
        const entry = this.objects.get(id);
        if (entry === undefined || entry.kind !== kind) {
            throw new PeerError(`unknown ${kind} handle ${JSON.stringify(id)}`, "UNKNOWN_HANDLE");
        }
        return entry.object;
    }

    // remove forgets id and returns its object, of any kind.
    remove(id) {
        const entry = this.objects.get(id);
        if (entry === undefined) {
            throw new PeerError(`unknown handle ${JSON.stringify(id)}`, "UNKNOWN_HANDLE");
        }
        this.objects.delete(id);
        return entry.object;
    }
}

function str(params, name) {
    const v = params[name];
    if (typeof v !== "string") {
        throw new PeerError(`param ${name}: want a string, got ${typeof v}`, "BAD_PARAMS");
    }
    return v;
}

function int(params, name) {
    const v = params[name];
    if (!Number.isSafeInteger(v) || v < 0) {
        throw new PeerError(`param ${name}: want a non-negative integer, got ${JSON.stringify(v)}`, "BAD_PARAMS");
    }
    return v;
}

function array(params, name) {
    const v = params[name] ?? [];
    if (!Array.isArray(v)) {
        throw new PeerError(`param ${name}: want an array`, "BAD_PARAMS");
    }
    return v;
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

// bytes decodes the standard base64 (padded, as Go's encoding/json writes
// []byte, or unpadded) in params[name]. Buffer.from alone would skip invalid
// characters silently.
function bytes(params, name) {
    const v = str(params, name);
    if (!base64Pattern.test(v)) {
        throw new PeerError(`param ${name}: not standard base64`, "BAD_PARAMS");
    }
    return Buffer.from(v, "base64");
}

// text returns params[name] as a string, or, when params[name + "_b64"] is
// given instead, its bytes: libolm accepts either for keys and signed messages.
function text(params, name) {
    if (params[`${name}_b64`] !== undefined) {
        return new Uint8Array(bytes(params, `${name}_b64`));
    }
    return str(params, name);
}

const builtins = {
    // rpc.ping answers once the peer's library is loaded.
    "rpc.ping": () => ({ pid: process.pid, node: process.version }),
    // rpc.sleep delays its reply; the Go side uses it to test its timeout.
    "rpc.sleep": (p) => new Promise((resolve) => setTimeout(() => resolve(null), int(p, "ms"))),
};

async function handle(methods, line) {
    let id = null;
    let reply;
    try {
        const request = JSON.parse(line);
        id = request.id ?? null;
        const method = request.method;
        const fn = Object.hasOwn(methods, method) ? methods[method] : Object.hasOwn(builtins, method) ? builtins[method] : undefined;
        if (fn === undefined) {
            throw new PeerError(`unknown method ${JSON.stringify(method)}`, "UNKNOWN_METHOD");
        }
        const result = await fn(request.params ?? {});
        reply = JSON.stringify({ id, ok: result === undefined ? null : result });
    } catch (e) {
        reply = JSON.stringify(errorReply(id, e));
    }
    process.stdout.write(reply + "\n");
}

function errorReply(id, e) {
    if (e instanceof Error) {
        const reply = { id, error: e.message || String(e) };
        if (typeof e.code === "string") reply.code = e.code;
        return reply;
    }
    return { id, error: String(e) };
}

// serve answers requests with methods until stdin closes, then exits.
function serve(methods) {
    const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
    let queue = Promise.resolve();
    lines.on("line", (line) => {
        queue = queue.then(() => handle(methods, line));
    });
    lines.on("close", () => {
        queue.then(() => process.exit(0));
    });
}

module.exports = { PeerError, Handles, serve, str, int, array, bytes, text };
