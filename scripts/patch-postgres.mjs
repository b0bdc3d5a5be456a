// Patches postgres.js 3.4.9 (npm postinstall) so that losing the database cannot crash or wedge the service.
//
// Upstream defect (porsager/postgres#1208, #1154, #1066; fixes proposed in #1168 and #1209, not released): small
// writes are flushed from a setImmediate, and a connection that closes in between is left inconsistent.
//  1. A write after close (the ROLLBACK that sql.begin() sends when a query of the transaction failed because the
//     connection dropped) runs socket.write on null from the immediate: an uncatchable TypeError that kills the
//     process. Patched: the flush settles the connection's queries with CONNECTION_CLOSED instead.
//  2. closed() and terminate() cancel the pending flush but leave its timer handle and bytes behind; write() arms a
//     flush only when no handle is set, so every later write on that connection, the start-up message of its
//     reconnection included, is never sent: the connection hangs until connect_timeout, again and again. Patched:
//     the handle and the stale bytes are dropped with the socket.
// test/reliability/outage.test.ts cuts every database connection under load and fails without this patch.
// The script is idempotent, and fails loudly if the code no longer looks as expected (a new postgres.js version:
// check whether upstream fixed it, then update or remove this script).
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const MARK = "/* audit-trail: scripts/patch-postgres.mjs */";
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../node_modules/postgres");

const edits = [
  {
    name: "nextWrite settles instead of writing to a closed socket",
    from: "  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)",
    to:
      "  function nextWrite(fn) {\n" +
      `    ${MARK}\n` +
      "    if (socket === null) {\n" +
      "      chunk = nextWriteTimer = null\n" +
      "      error(Errors.connection('CONNECTION_CLOSED', options))\n" +
      "      return false\n" +
      "    }\n" +
      "    const x = socket.write(chunk, fn)",
  },
  {
    name: "terminate() drops the pending flush",
    from: "    clearImmediate(nextWriteTimer)\n    if (socket) {",
    to: `    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null ${MARK}\n    if (socket) {`,
  },
  {
    name: "closed() drops the pending flush",
    from: "    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)",
    to: `    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null ${MARK}\n    socket.removeListener('data', data)`,
  },
];

const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
for (const dir of ["src", "cjs/src", "cf/src"]) {
  const file = path.join(root, dir, "connection.js");
  let text = readFileSync(file, "utf8");
  for (const edit of edits) {
    if (text.includes(edit.to)) continue;
    if (!text.includes(edit.from)) {
      throw new Error(`postgres ${version}, ${dir}/connection.js: cannot apply "${edit.name}"; see ${import.meta.url}`);
    }
    text = text.replace(edit.from, edit.to);
  }
  writeFileSync(file, text);
}
console.log(`postgres ${version}: connection close patch applied (scripts/patch-postgres.mjs)`);
