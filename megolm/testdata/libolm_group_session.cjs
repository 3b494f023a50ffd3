// Regenerates libolm_group_session.txt from libolm 3.2.15 (the wasm build
// published as @matrix-org/olm, installed under tests/node):
//
//	node megolm/testdata/libolm_group_session.cjs > megolm/testdata/libolm_group_session.txt
//
// libolm draws its randomness from crypto.randomBytes; it is replaced here by a
// fixed stream so that every value below is a pure function of it.
"use strict";
const crypto = require("crypto");
const path = require("path");

let queue = [];
crypto.randomBytes = (n) => {
  if (queue.length < n) throw new Error(`fixed random stream exhausted: want ${n}, have ${queue.length}`);
  const b = Buffer.from(queue.slice(0, n));
  queue = queue.slice(n);
  return b;
};
const Olm = require(path.join(__dirname, "../../tests/node/node_modules/@matrix-org/olm"));

(async () => {
  await Olm.init();
  const lines = [
    "# Megolm group session vectors generated with libolm 3.2.15 (@matrix-org/olm, wasm build)",
    "# by libolm_group_session.cjs. The outbound session was created from outbound_random;",
    "# pickles use the key in pickle_key (and the empty key where the name says so).",
    "# Expected outcome: every value must be reproduced or accepted byte for byte.",
  ];
  const put = (k, v) => lines.push(`${k}: ${v}`);
  const random = Array.from({ length: 160 }, (_, i) => i);
  queue = random.slice();

  const pickleKey = "secret_key";
  const ogs = new Olm.OutboundGroupSession();
  ogs.create();
  put("outbound_random", Buffer.from(random).toString("hex"));
  put("pickle_key", pickleKey);
  put("session_id", ogs.session_id());
  const sessionKey0 = ogs.session_key();
  put("session_key_0", sessionKey0);
  put("outbound_pickle_0", ogs.pickle(pickleKey));

  const plaintexts = ["", "Hello, World", "x".repeat(16), "The quick brown fox jumps over the lazy dog"];
  const messages = plaintexts.map((p, i) => {
    put(`plaintext_${i}`, Buffer.from(p).toString("hex"));
    const m = ogs.encrypt(p);
    put(`message_${i}`, m);
    return m;
  });
  put("message_index_after", ogs.message_index());
  put("outbound_pickle_4", ogs.pickle(pickleKey));
  put("outbound_pickle_4_empty_key", ogs.pickle(""));
  put("session_key_4", ogs.session_key());

  const igs = new Olm.InboundGroupSession();
  igs.create(sessionKey0);
  put("inbound_pickle_fresh", igs.pickle(pickleKey));
  const d = igs.decrypt(messages[2]);
  put("inbound_decrypt_2_index", d.message_index);
  put("inbound_pickle_after_2", igs.pickle(pickleKey));
  put("export_0", igs.export_session(0));
  put("export_3", igs.export_session(3));

  const imported = new Olm.InboundGroupSession();
  imported.import_session(igs.export_session(1));
  put("imported_first_known_index", imported.first_known_index());
  put("imported_pickle_1", imported.pickle(pickleKey));

  console.log(lines.join("\n"));
})();
