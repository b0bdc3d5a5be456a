import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { systemClock } from "../../src/clock.js";
import { createLogger } from "../../src/logger.js";
import { connectDatabase, type Database } from "../../src/store/database.js";
import { EventStore } from "../../src/store/event-store.js";
import { GroupCommit } from "../../src/store/group-commit.js";
import { eventLeafData } from "../../src/vlog/leaf.js";
import { parseSignerKey } from "../../src/vlog/note.js";
import { Edge, type FullTile } from "../../src/vlog/tiles.js";
import { TreeLog } from "../../src/vlog/tree-log.js";
import { startTestApp, TEST_LOG_SIGNING_KEY, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant, type TenantTokens } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { newEvent } from "../support/events.js";

const signer = parseSignerKey(TEST_LOG_SIGNING_KEY);
if (typeof signer === "string") throw new Error(signer);
const verifierKey = signer.verifierKey;
/** Instances sharing a database share the superadmin token too (another value would rotate it). */
const AUDIT_ADMIN_TOKEN = `at_test_${randomBytes(24).toString("base64url")}`;

let database: TestDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

const shared = () => ({ url: database.url, drop: async () => {} });

/** The independent verify tool: it recomputes the tree from the listed events and checks the signed root. */
function verify(app: TestApp, tokens: TenantTokens): Promise<{ status: number; out: string }> {
  const args = ["--url", app.url, "--tenant", tokens.tenant, "--key", verifierKey];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "scripts/verify.ts", ...args],
      { env: { ...process.env, AUDIT_TOKEN: tokens.reader } },
      (error, stdout, stderr) => resolve({ status: error ? Number(error.code) : 0, out: stdout + stderr }),
    );
  });
}

/** Every tenant's tree holds exactly its events: head size = last sequence. */
async function treesMatchSequences(): Promise<void> {
  const rows = await sql<{ tenant: string; last: string; size: string | null }[]>`
    select s.tenant, s.last_sequence as last, h.size from tenant_sequences s left join log_heads h using (tenant)
  `;
  for (const row of rows) expect(row.size, row.tenant).toBe(row.last);
}

/** A store with the verifiable log on a database of its own, dropped after `body`: for tests that break a tenant. */
async function withOwnStore(body: (db: Database, store: EventStore) => Promise<void>): Promise<void> {
  const own = await createTestDatabase();
  const db = await connectDatabase(own.url, { poolSize: 2, statementTimeoutMs: 10_000, logger: createLogger("warn") });
  try {
    await body(db, new EventStore(db.db, undefined, new TreeLog(db.sql, eventLeafData)));
  } finally {
    await db.close();
    await own.drop();
  }
}

describe("the tree under concurrent writers", () => {
  it("a tenant whose tree and events disagree fails its own writes only, not the rest of a group commit", async () => {
    // A database of its own: the broken tenant stays broken, and the other tests check every tenant's tree.
    await withOwnStore(async (db, store) => {
      const groupCommit = new GroupCommit(store, systemClock, { maxBatch: 100, queueLimit: 1000, flushes: 1 });
      await store.append("sound", [newEvent({ action: "a" })], systemClock);
      await store.append("broken", [newEvent({ action: "a" })], systemClock);
      // Events "stored" outside the service: the sequence moved, the tree did not.
      await db.sql`update tenant_sequences set last_sequence = last_sequence + 1 where tenant = 'broken'`;
      // Queued in one tick, so one flush holds all of them.
      const results = await Promise.allSettled([
        groupCommit.append("broken", newEvent({ action: "b" })),
        ...Array.from({ length: 10 }, () => groupCommit.append("sound", newEvent({ action: "b" }))),
      ]);
      const [broken, ...sound] = results;
      expect(broken?.status).toBe("rejected");
      expect(String((broken as PromiseRejectedResult).reason)).toContain("the verifiable log of tenant broken");
      expect(sound.map((r) => r.status)).toEqual(Array(10).fill("fulfilled"));
      // Starting over it: the broken tenant is reported and left alone, the others are served.
      const diverged: string[] = [];
      await new TreeLog(db.sql, eventLeafData).catchUp(
        (q) => store.range(q),
        (tenant) => diverged.push(tenant),
      );
      expect(diverged).toEqual(["broken"]);
    });
  });

  it("writes sent with their tree update, failed ones and ones that wait for the statement keep the stored tree exact", async () => {
    await withOwnStore(async (db, store) => {
      // No client ids: the tree update travels with the statement.
      await store.append("t", [newEvent({ action: "a" }), newEvent({ action: "b" })], systemClock);
      // The statement fails (jsonb refuses NUL), and with it the tree update sent beside it.
      const bad = { ...newEvent({ action: "c" }), action: "bad\u0000" };
      await expect(store.append("t", [newEvent({ action: "c" }), bad], systemClock)).rejects.toThrow();
      // A client id: the tree waits for the statement; then its replay, which adds no leaf.
      const chosen = newEvent({ action: "d", id: "chosen" });
      await store.append("t", [newEvent({ action: "d" }), chosen], systemClock);
      await store.append("t", [chosen], systemClock);
      // Another instance, which holds no edge in memory: it reads the head in its transaction.
      await new EventStore(db.db, undefined, new TreeLog(db.sql, eventLeafData)).append(
        "t",
        [newEvent({ action: "e" })],
        systemClock,
      );
      await store.append(
        "t",
        Array.from({ length: 300 }, (_, i) => newEvent({ action: `f.${i}` })),
        systemClock,
      );

      const rows = await store.range({ tenant: "t", afterSequence: 0, nowMicros: 0n, limit: 1000 });
      expect(rows.map((r) => r.sequence)).toEqual(Array.from({ length: 305 }, (_, i) => i + 1));
      const edge = Edge.empty();
      const tiles: FullTile[] = [];
      for (const row of rows) edge.appendLeaf(eventLeafData(row), tiles);
      const [head] = await db.sql<
        { size: string; edge: Buffer }[]
      >`select size, edge from log_heads where tenant = 't'`;
      expect(Number(head?.size)).toBe(305);
      expect(head?.edge.equals(edge.encode())).toBe(true);
      const stored = await db.sql<
        { hashes: Buffer }[]
      >`select hashes from log_tiles where tenant = 't' order by level, index`;
      expect(stored.map((t) => t.hashes.toString("hex"))).toEqual(tiles.map((t) => t.hashes.toString("hex")));
    });
  });

  it("many writers on two instances, through group commit and BatchCreate: every tree equals the recomputed one", async () => {
    const a = await startTestApp({ database: shared(), env: { GROUP_COMMIT_MAX_BATCH: "50", AUDIT_ADMIN_TOKEN } });
    const b = await startTestApp({ database: shared(), env: { AUDIT_ADMIN_TOKEN } });
    try {
      const tenants = await Promise.all(["one", "two", "three"].map((t) => provisionTenant(a, t)));
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 240; i++) {
        const tokens = tenants[i % 3] as TenantTokens;
        const audit = clientFor(AuditService, i % 2 ? a : b, "connect", tokens.writer);
        writes.push(audit.create({ event: { action: "doc.edit", id: i % 5 === 0 ? `edit-${i}` : "" } }));
        if (i % 40 === 0) {
          writes.push(
            audit.batchCreate({
              events: Array.from({ length: 30 }, (_, j) => ({ action: "doc.import", attributes: { i, j } })),
            }),
          );
        }
      }
      await Promise.all(writes);
      await treesMatchSequences();
      for (const tokens of tenants) {
        const result = await verify(tokens.tenant === "two" ? a : b, tokens);
        expect(result.out).toContain("hash to the checkpoint's root");
        expect(result.status).toBe(0);
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it("events stored with the log off join the tree, in sequence order, when an instance starts with it on", async () => {
    const off = await startTestApp({ database: shared(), env: { VERIFIABLE_LOG: "false" } });
    let tokens: TenantTokens;
    try {
      tokens = await provisionTenant(off, "later");
      const audit = clientFor(AuditService, off, "connect", tokens.writer);
      await Promise.all(Array.from({ length: 300 }, (_, i) => audit.create({ event: { action: `old.${i % 7}` } })));
      await expectError(clientFor(AuditService, off, "connect", tokens.reader).getCheckpoint({}), {
        code: Code.FailedPrecondition,
        reason: "VERIFIABLE_LOG_OFF",
      });
    } finally {
      await off.close();
    }
    const on = await startTestApp({ database: shared() });
    try {
      expect(on.logs.some((l) => l.includes("added events to the verifiable log"))).toBe(true);
      await treesMatchSequences();
      const result = await verify(on, tokens);
      expect(result.out).toContain("hash to the checkpoint's root");
      expect(result.status).toBe(0);
    } finally {
      await on.close();
    }
  });
});
