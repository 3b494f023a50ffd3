// A matrix-rust-sdk peer: OlmMachines from @matrix-org/matrix-sdk-crypto-wasm
// behind the JSON-lines protocol of rpc.cjs. A thin wrapper: each method is one
// OlmMachine call; JSON strings the SDK takes or returns cross as JSON values,
// SDK objects (requests, decrypted events) as plain objects of their fields.
// Machines use the in-memory store and are named by handles.

import { createRequire } from "node:module";
import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm";

const require = createRequire(import.meta.url);
const { PeerError, Handles, serve, str, int, array } = require("./rpc.cjs");

// Stable names for the SDK's numeric enums, independent of their values.
const requestTypes = names(sdk.RequestType, [
    "KeysUpload", "KeysQuery", "KeysClaim", "ToDevice", "SignatureUpload", "RoomMessage", "KeysBackup",
]);
const toDeviceTypes = names(sdk.ProcessedToDeviceEventType, ["Decrypted", "UnableToDecrypt", "PlainText", "Invalid"]);
const utdReasons = names(sdk.ToDeviceUnableToDecryptReason, [
    "DecryptionFailure", "UnverifiedSenderDevice", "NoOlmMachine", "EncryptionIsDisabled",
]);
const decryptionErrorCodes = names(sdk.DecryptionErrorCode, [
    "MissingRoomKey", "UnknownMessageIndex", "MismatchedIdentityKeys", "UnknownSenderDevice",
    "UnsignedSenderDevice", "SenderIdentityVerificationViolation", "UnableToDecrypt", "MismatchedSender",
]);

// names maps each enum value to its name; a name the SDK lacks fails at load.
function names(enumObject, list) {
    const byValue = new Map();
    for (const name of list) {
        if (typeof enumObject[name] !== "number") throw new Error(`SDK enum lacks ${name}`);
        byValue.set(enumObject[name], name);
    }
    return byValue;
}

function enumValue(enumObject, name, what) {
    const v = enumObject[name];
    if (typeof v !== "number") throw new PeerError(`unknown ${what} ${JSON.stringify(name)}`, "BAD_PARAMS");
    return v;
}

const handles = new Handles();

function machine(p) {
    return handles.get("machine", str(p, "machine"));
}

const userIds = (list) => list.map((u) => new sdk.UserId(u));
const json = (v) => JSON.stringify(v);
const optString = (v) => (v === undefined || v === null ? null : v.toString());

// request flattens an outgoing request: id, type name, parsed body, plus the
// routing fields some request kinds carry (to-device event type and txn id,
// room id, backup version).
function request(r) {
    const out = { id: r.id ?? null, type: requestTypes.get(r.type) ?? `Unknown(${r.type})`, body: JSON.parse(r.body) };
    for (const field of ["event_type", "txn_id", "room_id", "version"]) {
        if (typeof r[field] === "string") out[field] = r[field];
    }
    return out;
}

function toDeviceEvent(e) {
    const out = { type: toDeviceTypes.get(e.type) ?? `Unknown(${e.type})`, event: JSON.parse(e.rawEvent) };
    if (e.encryptionInfo !== undefined) {
        const info = e.encryptionInfo;
        out.encryption_info = {
            sender: info.sender.toString(),
            sender_device: optString(info.senderDevice),
            sender_curve25519_key: info.senderCurve25519Key,
            sender_verified: info.isSenderVerified(),
        };
    }
    if (e.utdInfo !== undefined) out.utd_reason = utdReasons.get(e.utdInfo.reason) ?? `Unknown(${e.utdInfo.reason})`;
    return out;
}

function encryptionSettings(p) {
    const s = new sdk.EncryptionSettings();
    const given = p.settings ?? {};
    if (given.rotation_period_messages !== undefined) s.rotationPeriodMessages = BigInt(int(given, "rotation_period_messages"));
    if (given.rotation_period_us !== undefined) s.rotationPeriod = BigInt(int(given, "rotation_period_us"));
    if (given.history_visibility !== undefined) {
        s.historyVisibility = enumValue(sdk.HistoryVisibility, str(given, "history_visibility"), "history visibility");
    }
    return s;
}

// megolmError turns the SDK's MegolmDecryptionError (not an Error instance)
// into a PeerError with the code's name.
function megolmError(e) {
    if (e instanceof sdk.MegolmDecryptionError) {
        return new PeerError(e.description, decryptionErrorCodes.get(e.code) ?? `Unknown(${e.code})`);
    }
    return e;
}

const methods = {
    "machine.initialize": async (p) => {
        const m = await sdk.OlmMachine.initialize(new sdk.UserId(str(p, "user_id")), new sdk.DeviceId(str(p, "device_id")));
        return handles.add("machine", m);
    },
    "machine.close": (p) => {
        handles.remove(str(p, "machine")).close();
        return null;
    },
    "machine.identity_keys": (p) => {
        const keys = machine(p).identityKeys;
        return { curve25519: keys.curve25519.toBase64(), ed25519: keys.ed25519.toBase64() };
    },
    "machine.outgoing_requests": async (p) => (await machine(p).outgoingRequests()).map(request),
    "machine.mark_request_as_sent": async (p) => {
        const type = enumValue(sdk.RequestType, str(p, "type"), "request type");
        await machine(p).markRequestAsSent(str(p, "id"), type, json(p.response ?? {}));
        return null;
    },
    "machine.receive_sync_changes": async (p) => {
        const counts = new Map(Object.entries(p.one_time_key_counts ?? {}));
        const fallback = p.unused_fallback_key_types == null ? undefined : new Set(array(p, "unused_fallback_key_types"));
        const lists = new sdk.DeviceLists(userIds(array(p, "changed")), userIds(array(p, "left")));
        const events = await machine(p).receiveSyncChanges(json(array(p, "to_device_events")), lists, counts, fallback);
        return events.map(toDeviceEvent);
    },
    "machine.update_tracked_users": async (p) => {
        await machine(p).updateTrackedUsers(userIds(array(p, "users")));
        return null;
    },
    "machine.get_missing_sessions": async (p) => {
        const r = await machine(p).getMissingSessions(userIds(array(p, "users")));
        return r ? request(r) : null;
    },
    "machine.get_device": async (p) => {
        const d = await machine(p).getDevice(new sdk.UserId(str(p, "user_id")), new sdk.DeviceId(str(p, "device_id")));
        if (d === undefined) return null;
        return {
            user_id: d.userId.toString(),
            device_id: d.deviceId.toString(),
            curve25519: d.curve25519Key?.toBase64() ?? null,
            ed25519: d.ed25519Key?.toBase64() ?? null,
            verified: d.isVerified(),
        };
    },
    "machine.encrypt_to_device": async (p) => {
        const m = machine(p);
        const d = await m.getDevice(new sdk.UserId(str(p, "user_id")), new sdk.DeviceId(str(p, "device_id")));
        if (d === undefined) throw new PeerError(`unknown device ${p.user_id} ${p.device_id}`, "UNKNOWN_DEVICE");
        return JSON.parse(await d.encryptToDeviceEvent(str(p, "type"), p.content ?? {}));
    },
    "machine.share_room_key": async (p) => {
        const m = machine(p);
        const requests = await m.shareRoomKey(new sdk.RoomId(str(p, "room_id")), userIds(array(p, "users")), encryptionSettings(p));
        return requests.map(request);
    },
    "machine.encrypt_room_event": async (p) =>
        JSON.parse(await machine(p).encryptRoomEvent(new sdk.RoomId(str(p, "room_id")), str(p, "type"), json(p.content ?? {}))),
    "machine.decrypt_room_event": async (p) => {
        const trust = enumValue(sdk.TrustRequirement, p.trust_requirement ?? "Untrusted", "trust requirement");
        let d;
        try {
            d = await machine(p).decryptRoomEvent(json(p.event), new sdk.RoomId(str(p, "room_id")), new sdk.DecryptionSettings(trust));
        } catch (e) {
            throw megolmError(e);
        }
        return {
            event: JSON.parse(d.event),
            sender: d.sender.toString(),
            sender_device: optString(d.senderDevice),
            sender_curve25519_key: d.senderCurve25519Key,
            sender_claimed_ed25519_key: d.senderClaimedEd25519Key ?? null,
        };
    },
    "machine.export_room_keys": async (p) => {
        const room = p.room_id ?? null;
        const keys = await machine(p).exportRoomKeys((s) => room === null || s.roomId.toString() === room);
        return JSON.parse(keys);
    },
    "machine.import_exported_room_keys": async (p) => {
        const result = await machine(p).importExportedRoomKeys(json(array(p, "keys")), () => {});
        return { imported_count: result.importedCount, total_count: result.totalCount };
    },
    "export.encrypt": (p) => sdk.OlmMachine.encryptExportedRoomKeys(json(array(p, "keys")), str(p, "passphrase"), int(p, "rounds")),
    "export.decrypt": (p) => JSON.parse(sdk.OlmMachine.decryptExportedRoomKeys(str(p, "file"), str(p, "passphrase"))),
    "version": () => {
        const v = sdk.getVersions();
        return { vodozemac: v.vodozemac, matrix_sdk_crypto: v.matrix_sdk_crypto };
    },
};

await sdk.initAsync();
serve(methods);
