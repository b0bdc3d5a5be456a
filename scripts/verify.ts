/**
 * Checks a tenant's verifiable log from outside, through the public API only (the Connect protocol's JSON over
 * fetch) and with its own code for everything it checks: C2SP signed notes, RFC 8785 canonical JSON and RFC 9162
 * Merkle trees. Nothing here imports the service's sources, so a bug there cannot hide one here.
 *
 *   npm run -s verify -- --url URL --tenant T --key VERIFIER_KEY [--state FILE] [--event ID] [--token TOKEN]
 *
 * The token (a reader's) comes from --token or AUDIT_TOKEN. Exit status: 0 all checks passed, 1 the log failed a
 * check (each failure printed, naming the sequences), 2 the tool could not run (arguments, network, refusals).
 * docs/verifiable-log.md describes what each check proves.
 */
import { createHash, createPublicKey, verify as verifySignature } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type EventJson = { [key: string]: Json } & { sequence?: string; id?: string };

class Failure extends Error {}
class Trouble extends Error {}

// ---- RFC 9162 Merkle trees -------------------------------------------------------------------------------------

const sha256 = (...parts: Uint8Array[]) => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return hash.digest();
};
const hashLeaf = (data: Uint8Array) => sha256(Buffer.from([0]), data);
const hashChildren = (left: Uint8Array, right: Uint8Array) => sha256(Buffer.from([1]), left, right);

/** MTH(D[n]) of leaf hashes (RFC 9162 2.1.1). */
function merkleRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha256();
  const level = (from: number, to: number): Buffer => {
    if (to - from === 1) return leaves[from] as Buffer;
    let k = 1;
    while (k * 2 < to - from) k *= 2;
    return hashChildren(level(from, from + k), level(from + k, to));
  };
  return level(0, leaves.length);
}

const half = (n: number) => Math.floor(n / 2);
const odd = (n: number) => n % 2 === 1;

/** RFC 9162 2.1.3.2: does `path` lead from the leaf at `index` to `root` in a tree of `size`? */
function verifyInclusion(index: number, size: number, leaf: Buffer, path: Buffer[], root: Buffer): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = hashChildren(p, r);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 2.1.4.2: is the tree (first, firstRoot) a prefix of (second, secondRoot)? */
function verifyConsistency(first: number, second: number, firstRoot: Buffer, secondRoot: Buffer, proof: Buffer[]) {
  if (first === second) return proof.length === 0 && firstRoot.equals(secondRoot);
  if (first > second || first === 0 || proof.length === 0) return false;
  const path = Number.isInteger(Math.log2(first)) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Buffer;
  let sr = path[0] as Buffer;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return fr.equals(firstRoot) && sr.equals(secondRoot) && sn === 0;
}

// ---- RFC 8785 canonical JSON -----------------------------------------------------------------------------------

/** JCS: object keys sorted by UTF-16 code units, no whitespace, ECMAScript number and string serialization. */
function canonical(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k] as Json)}`).join(",")}}`;
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw new Trouble("JSON holds a number JCS cannot write");
  return JSON.stringify(value);
}

const eventLeaf = (event: EventJson) => hashLeaf(Buffer.from(canonical(event), "utf8"));

// ---- C2SP signed notes and checkpoints -------------------------------------------------------------------------

interface VerifierKey {
  name: string;
  id: Buffer;
  key: ReturnType<typeof createPublicKey>;
}

function parseVerifierKey(text: string): VerifierKey {
  // name+id+key; the base64 key may itself hold "+".
  const [name = "", id = "", ...rest] = text.split("+");
  const bytes = Buffer.from(rest.join("+"), "base64");
  if (name === "" || !/^[0-9a-f]{8}$/i.test(id) || bytes.length !== 33 || bytes[0] !== 1) {
    throw new Trouble(`--key is not an Ed25519 note verifier key (name+keyid+base64 key): ${text}`);
  }
  const expectedId = sha256(Buffer.from(`${name}\n`), bytes).subarray(0, 4);
  if (!expectedId.equals(Buffer.from(id, "hex"))) throw new Trouble("--key: its key id does not match its key");
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), bytes.subarray(1)]);
  return { name, id: expectedId, key: createPublicKey({ key: spki, format: "der", type: "spki" }) };
}

interface Checkpoint {
  note: string;
  origin: string;
  size: number;
  root: Buffer;
}

/** Checks a checkpoint note: signed by the key, for this tenant's origin; then reads its size and root. */
function openCheckpoint(note: string, vkey: VerifierKey, tenant: string, what: string): Checkpoint {
  const split = note.lastIndexOf("\n\n");
  if (split < 0 || !note.endsWith("\n")) throw new Failure(`${what}: not a signed note`);
  const text = note.slice(0, split + 1);
  const signatures = note.slice(split + 2, -1).split("\n");
  let signed = false;
  for (const line of signatures) {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (!match) throw new Failure(`${what}: malformed signature line ${JSON.stringify(line)}`);
    const bytes = Buffer.from(match[2] as string, "base64");
    if (match[1] !== vkey.name || !bytes.subarray(0, 4).equals(vkey.id)) continue;
    if (!verifySignature(null, Buffer.from(text), vkey.key, bytes.subarray(4))) {
      throw new Failure(`${what}: the signature by ${vkey.name} does not verify: the note was altered or forged`);
    }
    signed = true;
  }
  if (!signed) throw new Failure(`${what}: no signature by the key ${vkey.name}`);
  const [origin = "", size = "", root = "", ...extensions] = text.slice(0, -1).split("\n");
  if (origin !== `${vkey.name}/${tenant}`) {
    throw new Failure(`${what}: its origin is ${JSON.stringify(origin)}, not ${vkey.name}/${tenant}'s`);
  }
  const rootBytes = Buffer.from(root, "base64");
  if (!/^(0|[1-9][0-9]*)$/.test(size) || rootBytes.length !== 32 || extensions.some((l) => l === "")) {
    throw new Failure(`${what}: not a checkpoint (origin, tree size, base64 root hash)`);
  }
  return { note, origin, size: Number(size), root: rootBytes };
}

// ---- The API ---------------------------------------------------------------------------------------------------

function client(url: string, token: string) {
  return async <T>(method: string, body: object): Promise<T> => {
    const reply = await fetch(`${url.replace(/\/$/, "")}/audit.v1.AuditService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    }).catch((error: Error) => {
      throw new Trouble(`${method}: ${error.message}`);
    });
    const json = (await reply.json().catch(() => ({}))) as T & { code?: string; message?: string };
    if (!reply.ok) throw new Trouble(`${method} failed: ${json.code ?? reply.status}: ${json.message ?? ""}`);
    return json;
  };
}

type Call = ReturnType<typeof client>;
const bytes = (list: string[] | undefined) => (list ?? []).map((h) => Buffer.from(h, "base64"));

async function checkpoint(call: Call, tenant: string, vkey: VerifierKey, what: string): Promise<Checkpoint> {
  const reply = await call<{ checkpoint: string }>("GetCheckpoint", { tenant, fresh: true });
  return openCheckpoint(reply.checkpoint, vkey, tenant, what);
}

async function consistent(
  call: Call,
  tenant: string,
  from: Checkpoint | { size: number; root: Buffer },
  to: Checkpoint,
) {
  if (from.size === to.size) return from.root.equals(to.root);
  const reply = await call<{ hashes?: string[] }>("GetConsistencyProof", {
    tenant,
    fromSize: String(from.size),
    toSize: String(to.size),
  });
  return verifyConsistency(from.size, to.size, from.root, to.root, bytes(reply.hashes));
}

async function listAll(call: Call, tenant: string): Promise<EventJson[]> {
  const events: EventJson[] = [];
  let pageToken = "";
  do {
    const page = await call<{ events?: EventJson[]; nextPageToken?: string }>("List", {
      tenant,
      pageSize: 1000,
      pageToken,
      order: "ORDER_OLDEST_FIRST",
      includeChildren: true,
      includeServiceRecords: true,
    });
    events.push(...(page.events ?? []));
    pageToken = page.nextPageToken ?? "";
  } while (pageToken !== "");
  return events;
}

const sequenceOf = (event: EventJson) => Number(event.sequence ?? 0);

/** Ranges of numbers as "3", "3…7", joined by commas. */
function ranges(numbers: number[]): string {
  const out: string[] = [];
  const sorted = [...numbers].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}…${sorted[j]}`);
    i = j + 1;
  }
  return out.join(", ");
}

/**
 * Every event up to the checkpoint's size against its root. Gaps, duplicates and events the tree does not hold are
 * named from the sequences; a changed event by bisecting with consistency proofs (the first m events hash to a tree
 * that is a prefix of the signed one exactly while none of them changed), then identified with its inclusion proof.
 */
async function checkEvents(call: Call, tenant: string, vkey: VerifierKey, first: Checkpoint, say: (s: string) => void) {
  const events = await listAll(call, tenant);
  let target = first;
  const highest = Math.max(0, ...events.map(sequenceOf));
  if (highest > target.size) {
    // Events committed after the checkpoint was signed: a newer checkpoint covers them, unless they are forged.
    const newer = await checkpoint(call, tenant, vkey, "the newer checkpoint");
    if (!(await consistent(call, tenant, first, newer))) {
      throw new Failure(`the checkpoint of size ${newer.size} does not extend the one of size ${first.size}`);
    }
    target = newer;
    const outside = events.map(sequenceOf).filter((s) => s > target.size);
    if (outside.length > 0) {
      throw new Failure(
        `sequence ${ranges(outside)}: stored, but not in the log's tree of ${target.size} events: added outside the service`,
      );
    }
  }
  const bySequence = new Map<number, EventJson[]>();
  for (const event of events) bySequence.set(sequenceOf(event), [...(bySequence.get(sequenceOf(event)) ?? []), event]);
  const problems: string[] = [];
  const missing: number[] = [];
  for (let s = 1; s <= target.size; s++) if (!bySequence.has(s)) missing.push(s);
  if (missing.length > 0) problems.push(`sequence ${ranges(missing)}: missing (deleted, or never listed)`);
  const twice = [...bySequence].filter(([, list]) => list.length > 1).map(([s]) => s);
  if (twice.length > 0) problems.push(`sequence ${ranges(twice)}: more than one event`);
  const strange = [...bySequence.keys()].filter((s) => !Number.isSafeInteger(s) || s < 1);
  if (strange.length > 0) problems.push(`sequence ${strange.join(", ")}: not a sequence of the log: added outside it`);
  if (problems.length > 0) throw new Failure(problems.join("\n"));

  const ordered = Array.from({ length: target.size }, (_, i) => (bySequence.get(i + 1) as EventJson[])[0] as EventJson);
  const leaves = ordered.map(eventLeaf);
  if (merkleRoot(leaves).equals(target.root)) {
    say(`ok: ${target.size} events listed, in sequence 1…${target.size}, hash to the checkpoint's root`);
    return;
  }
  let good = 0;
  let bad = target.size;
  while (bad - good > 1) {
    const m = Math.floor((good + bad) / 2);
    if (await consistent(call, tenant, { size: m, root: merkleRoot(leaves.slice(0, m)) }, target)) good = m;
    else bad = m;
  }
  const proof = await call<{ hashes?: string[] }>("GetInclusionProof", {
    tenant,
    sequence: String(bad),
    treeSize: String(target.size),
  });
  const path = bytes(proof.hashes);
  const committed = ordered.find((e) =>
    verifyInclusion(bad - 1, target.size, eventLeaf({ ...e, sequence: String(bad) }), path, target.root),
  );
  if (committed && sequenceOf(committed) !== bad) {
    throw new Failure(
      `sequence ${bad}: not the event the log committed to there; that event (id ${committed.id}) is now at sequence ${sequenceOf(committed)}: sequences swapped or reordered`,
    );
  }
  throw new Failure(
    `sequence ${bad}: the event (id ${ordered[bad - 1]?.id}) was altered after the log committed to it`,
  );
}

async function checkOne(call: Call, tenant: string, id: string, cp: Checkpoint, say: (s: string) => void) {
  const reply = await call<{ event: EventJson; leafIndex?: string; hashes?: string[] }>("GetInclusionProof", {
    tenant,
    id,
    treeSize: String(cp.size),
  });
  const index = Number(reply.leafIndex ?? 0);
  if (reply.event.id !== id) throw new Failure(`event ${id}: the service answered with event ${reply.event.id}`);
  if (index !== sequenceOf(reply.event) - 1) {
    throw new Failure(`event ${id}: proved at leaf ${index}, but its sequence is ${sequenceOf(reply.event)}`);
  }
  if (!verifyInclusion(index, cp.size, eventLeaf(reply.event), bytes(reply.hashes), cp.root)) {
    throw new Failure(
      `sequence ${sequenceOf(reply.event)}: event ${id} is not in the tree as listed: altered or forged`,
    );
  }
  say(`ok: event ${id} (sequence ${sequenceOf(reply.event)}) is in the checkpoint's tree`);
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: "string" },
      tenant: { type: "string" },
      key: { type: "string" },
      state: { type: "string" },
      event: { type: "string" },
      token: { type: "string" },
    },
  });
  const token = values.token ?? process.env.AUDIT_TOKEN;
  if (!values.url || !values.tenant || !values.key || !token) {
    throw new Trouble(
      "usage: npm run -s verify -- --url URL --tenant T --key VERIFIER_KEY [--state FILE] [--event ID] (token: --token or AUDIT_TOKEN)",
    );
  }
  const tenant = values.tenant;
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const vkey = parseVerifierKey(values.key);
  const call = client(values.url, token);
  const current = await checkpoint(call, tenant, vkey, "the checkpoint");
  say(`ok: checkpoint of ${current.origin} at size ${current.size}, signed by ${vkey.name}`);
  if (values.state) {
    const saved = await readFile(values.state, "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw new Trouble(`--state ${values.state}: ${error.message}`);
    });
    if (saved === undefined) say(`no checkpoint saved in ${values.state} yet: this run's will be the first`);
    else {
      const earlier = openCheckpoint(saved, vkey, tenant, `the saved checkpoint (${values.state})`);
      if (earlier.size > current.size) {
        throw new Failure(
          `sequence ${ranges(Array.from({ length: earlier.size - current.size }, (_, i) => current.size + i + 1))}: gone: the log shrank from ${earlier.size} to ${current.size} events since the saved checkpoint`,
        );
      }
      if (!(await consistent(call, tenant, earlier, current))) {
        throw new Failure(
          `sequence 1…${earlier.size}: rewritten: the saved checkpoint of size ${earlier.size} is not a prefix of the log now (a fork)`,
        );
      }
      say(`ok: consistent with the saved checkpoint of size ${earlier.size}`);
    }
  }
  if (values.event) await checkOne(call, tenant, values.event, current, say);
  else await checkEvents(call, tenant, vkey, current, say);
  if (values.state) {
    await writeFile(`${values.state}.tmp`, current.note);
    await rename(`${values.state}.tmp`, values.state);
    say(`saved the checkpoint of size ${current.size} to ${values.state}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error: unknown) => {
    const failed = error instanceof Failure;
    for (const line of String((error as Error).message).split("\n")) {
      process.stderr.write(`${failed ? "FAIL" : "error"}: ${line}\n`);
    }
    process.exit(failed ? 1 : 2);
  },
);
