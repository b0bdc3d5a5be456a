import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { eventLeafData } from "../../src/vlog/leaf.js";
import { leafHash } from "../../src/vlog/merkle.js";
import { parseSignerKey } from "../../src/vlog/note.js";
import { startTestApp, TEST_LOG_SIGNING_KEY, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant, type TenantTokens } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";

const signer = parseSignerKey(TEST_LOG_SIGNING_KEY);
if (typeof signer === "string") throw new Error(signer);
const verifierKey = signer.verifierKey;

let database: TestDatabase;
let app: TestApp;
/** The database as its superuser: the one role that can bypass the append-only trigger. */
let superuser: postgres.Sql;
let workDir: string;

beforeAll(async () => {
  database = await createTestDatabase();
  app = await startTestApp({ database });
  superuser = postgres(database.url, { max: 1, onnotice: () => {} });
  workDir = await mkdtemp(path.join(tmpdir(), "vlog-"));
});

afterAll(async () => {
  await superuser?.end();
  await app?.close();
  await database?.drop();
  await rm(workDir, { recursive: true, force: true });
});

/** The verify tool as a user runs it, in its own process, against the service's URL. */
function verify(
  target: Pick<TestApp, "url">,
  tokens: TenantTokens,
  ...args: string[]
): Promise<{ status: number; out: string }> {
  const argv = [
    "--import",
    "tsx",
    "scripts/verify.ts",
    "--url",
    target.url,
    "--tenant",
    tokens.tenant,
    "--key",
    verifierKey,
  ];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...argv, ...args],
      { env: { ...process.env, AUDIT_TOKEN: tokens.reader } },
      (error, stdout, stderr) => resolve({ status: error ? Number(error.code) : 0, out: stdout + stderr }),
    );
  });
}

async function tenantWithEvents(tenant: string, count: number): Promise<TenantTokens> {
  const tokens = await provisionTenant(app, tenant);
  const audit = clientFor(AuditService, app, "connect", tokens.writer);
  await audit.batchCreate({
    events: Array.from({ length: count }, (_, i) => ({
      id: `${tenant}-${i + 1}`,
      action: i % 2 ? "invoice.pay" : "invoice.create",
      actor: { id: `u-${i}` },
      attributes: { n: i, note: "ünïcode" },
    })),
  });
  return tokens;
}

/** Runs statements as the superuser with triggers off, as an operator or attacker with database access could. */
async function tamper(run: (sql: postgres.TransactionSql) => Promise<unknown>) {
  await superuser.begin(async (sql) => {
    await sql`set local session_replication_role = replica`;
    await run(sql);
  });
}

async function lastSequence(tenant: string): Promise<number> {
  const [row] = await superuser<
    { last: string }[]
  >`select last_sequence as last from tenant_sequences where tenant = ${tenant}`;
  return Number(row?.last);
}

describe("the leaf format", () => {
  it("the worked example of docs/verifiable-log.md", () => {
    const data = eventLeafData({
      tenant: "acme",
      sequence: 42,
      id: "inv-7-paid",
      occurredAt: "2026-03-01 09:30:00.25+00",
      receivedAt: "2026-03-01 09:30:01.123456+00",
      completedAt: null,
      expiresAt: null,
      source: "billing",
      action: "invoice.pay",
      category: "",
      actorId: "u-42",
      actorType: "user",
      actorName: "",
      actorEmail: "ann@example.com",
      actorRoles: ["accountant"],
      targetId: "inv-7",
      targetType: "invoice",
      targetName: "",
      outcomeStatus: 1,
      outcomeCode: "",
      outcomeMessage: "",
      request: null,
      attributes: { amount: 120.5, currency: "EUR", é: true },
      parentId: "",
    });
    expect(Buffer.from(data).toString()).toBe(
      '{"action":"invoice.pay","actor":{"email":"ann@example.com","id":"u-42","roles":["accountant"],"type":"user"},"attributes":{"amount":120.5,"currency":"EUR","é":true},"id":"inv-7-paid","occurredAt":"2026-03-01T09:30:00.250Z","outcome":{"status":"OUTCOME_STATUS_SUCCESS"},"receivedAt":"2026-03-01T09:30:01.123456Z","sequence":"42","source":"billing","target":{"id":"inv-7","type":"invoice"},"tenant":"acme"}',
    );
    expect(leafHash(data).toString("hex")).toBe("c4eec817ddbf0da5ca791e03acf24c63b94c81720fe1272e7bbd9cee0ab8a2b5");
  });

  it("is the canonical JSON of the event exactly as List returns it over Connect", async () => {
    const tokens = await tenantWithEvents("leaf", 3);
    const listed = (await (
      await fetch(`${app.url}/audit.v1.AuditService/List`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${tokens.reader}` },
        body: JSON.stringify({ includeChildren: true, includeServiceRecords: true, order: "ORDER_OLDEST_FIRST" }),
      })
    ).json()) as { events: { id: string; sequence: string }[] };
    const audit = clientFor(AuditService, app, "connect", tokens.reader);
    const checkpoint = await audit.getCheckpoint({ fresh: true });
    expect(Number(checkpoint.treeSize)).toBe(listed.events.length);
    for (const event of listed.events) {
      // The test's own JCS: sorted keys, no whitespace (no key here needs more than a code-unit sort).
      const jcs = (v: unknown): string =>
        Array.isArray(v)
          ? `[${v.map(jcs).join(",")}]`
          : v && typeof v === "object"
            ? `{${Object.keys(v)
                .sort()
                .map((k) => `${JSON.stringify(k)}:${jcs((v as Record<string, unknown>)[k])}`)
                .join(",")}}`
            : JSON.stringify(v);
      const leaf = createHash("sha256")
        .update(Buffer.from([0]))
        .update(jcs(event))
        .digest();
      const proof = await audit.getInclusionProof({ eventRef: { case: "id", value: event.id } });
      expect(proof.leafIndex).toBe(BigInt(event.sequence) - 1n);
      let hash = leaf;
      let index = Number(proof.leafIndex);
      let last = Number(proof.treeSize) - 1;
      for (const sibling of proof.hashes) {
        const node = createHash("sha256").update(Buffer.from([1]));
        if (index % 2 === 1 || index === last) {
          hash = node.update(sibling).update(hash).digest();
          while (index % 2 === 0 && index !== 0) {
            index /= 2;
            last = Math.floor(last / 2);
          }
        } else hash = node.update(hash).update(sibling).digest();
        index = Math.floor(index / 2);
        last = Math.floor(last / 2);
      }
      expect(hash.equals(Buffer.from(checkpoint.rootHash))).toBe(true);
    }
  });
});

describe("checkpoints and proofs", () => {
  it("a signed checkpoint names the tenant, and the verifier key is published", async () => {
    const tokens = await tenantWithEvents("notes", 5);
    const audit = clientFor(AuditService, app, "grpc-web", tokens.reader);
    const checkpoint = await audit.getCheckpoint({ fresh: true });
    expect(checkpoint.verifierKey).toBe(verifierKey);
    expect(checkpoint.origin).toBe("audit-trail.test/notes");
    const [text] = checkpoint.checkpoint.split("\n\n");
    expect(text).toBe(
      `audit-trail.test/notes\n${checkpoint.treeSize}\n${Buffer.from(checkpoint.rootHash).toString("base64")}`,
    );
    expect(Number(checkpoint.treeSize)).toBe(await lastSequence("notes"));
    // Without `fresh`, the latest one signed.
    expect((await audit.getCheckpoint({})).checkpoint).toBe(checkpoint.checkpoint);
  });

  it("a tree that grew gets a new checkpoint once the interval has passed, without asking", async () => {
    const tokens = await tenantWithEvents("interval", 2);
    const audit = clientFor(AuditService, app, "connect", tokens.reader);
    const first = await audit.getCheckpoint({ fresh: true });
    await clientFor(AuditService, app, "connect", tokens.writer).create({ event: { action: "grown" } });
    expect((await audit.getCheckpoint({})).treeSize).toBe(first.treeSize);
    const signer = await startTestApp({
      database: { url: database.url, drop: async () => {} },
      env: { LOG_CHECKPOINT_INTERVAL_MS: "1000", AUDIT_ADMIN_TOKEN: app.adminToken },
    });
    try {
      const deadline = Date.now() + 15_000;
      let latest = first;
      while (latest.treeSize === first.treeSize && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        latest = await audit.getCheckpoint({});
      }
      expect(latest.treeSize).toBe(first.treeSize + 1n);
    } finally {
      await signer.close();
    }
  });

  it("sizes beyond the tree are OUT_OF_RANGE, bad sizes INVALID_ARGUMENT, unknown events NOT_FOUND", async () => {
    const tokens = await tenantWithEvents("ranges", 4);
    const audit = clientFor(AuditService, app, "connect", tokens.reader);
    const size = await lastSequence("ranges");
    await expectError(audit.getConsistencyProof({ fromSize: 1n, toSize: BigInt(size + 1) }), {
      code: Code.OutOfRange,
      reason: "TREE_SIZE_OUT_OF_RANGE",
    });
    await expectError(audit.getConsistencyProof({ fromSize: 3n, toSize: 2n }), {
      code: Code.OutOfRange,
      reason: "TREE_SIZE_OUT_OF_RANGE",
    });
    await expectError(audit.getConsistencyProof({ fromSize: 0n, toSize: 2n }), {
      code: Code.InvalidArgument,
      fields: ["from_size"],
    });
    await expectError(
      audit.getInclusionProof({ eventRef: { case: "sequence", value: 1n }, treeSize: BigInt(size + 5) }),
      {
        code: Code.OutOfRange,
        reason: "TREE_SIZE_OUT_OF_RANGE",
      },
    );
    await expectError(audit.getInclusionProof({ eventRef: { case: "sequence", value: BigInt(size) }, treeSize: 1n }), {
      code: Code.OutOfRange,
      reason: "TREE_SIZE_OUT_OF_RANGE",
    });
    await expectError(audit.getInclusionProof({ eventRef: { case: "id", value: "no-such-event" } }), {
      code: Code.NotFound,
      reason: "EVENT_NOT_FOUND",
    });
    await expectError(audit.getInclusionProof({}), { code: Code.InvalidArgument, reason: "MISSING_FIELD" });
    // A writer-only key may not read the log's proofs.
    await expectError(clientFor(AuditService, app, "connect", tokens.writer).getCheckpoint({}), {
      code: Code.PermissionDenied,
      reason: "INSUFFICIENT_ROLE",
    });
    // REST: the annotations' routes, with the same errors.
    const rest = (query: string) =>
      fetch(`${app.url}/v1/tenants/ranges/log/consistencyProof?${query}`, {
        headers: { authorization: `Bearer ${tokens.reader}` },
      });
    const beyond = await rest(`fromSize=1&toSize=${size + 1}`);
    expect(beyond.status).toBe(400);
    expect(JSON.stringify(await beyond.json())).toContain("TREE_SIZE_OUT_OF_RANGE");
    const proof = (await (await rest(`fromSize=1&toSize=${size}`)).json()) as { hashes: string[] };
    expect(proof.hashes.length).toBeGreaterThan(0);
    const checkpoint = await fetch(`${app.url}/v1/tenants/ranges/log/checkpoint?fresh=true`, {
      headers: { authorization: `Bearer ${tokens.reader}` },
    });
    expect(((await checkpoint.json()) as { treeSize: string }).treeSize).toBe(String(size));
  });
});

describe("the verify tool", () => {
  it("passes an untouched log, keeps its state, and checks one event's inclusion", async () => {
    const tokens = await tenantWithEvents("clean", 20);
    const state = path.join(workDir, "clean.checkpoint");
    const first = await verify(app, tokens, "--state", state);
    expect(first.out).toContain("hash to the checkpoint's root");
    expect(first.status).toBe(0);
    await clientFor(AuditService, app, "connect", tokens.writer).create({ event: { action: "later" } });
    const second = await verify(app, tokens, "--state", state);
    expect(second.out).toMatch(/consistent with the saved checkpoint of size \d+/);
    expect(second.status).toBe(0);
    expect(await readFile(state, "utf8")).toContain(`\n${await lastSequence("clean")}\n`);
    const one = await verify(app, tokens, "--event", "clean-7");
    expect(one.out).toContain("event clean-7 (sequence");
    expect(one.status).toBe(0);
  });

  it("names the sequence of an event changed in the database", async () => {
    const tokens = await tenantWithEvents("changed", 12);
    const sequence = (await lastSequence("changed")) - 5;
    await tamper(
      (sql) => sql`update events set action = 'invoice.void' where tenant = 'changed' and sequence = ${sequence}`,
    );
    const result = await verify(app, tokens);
    expect(result.out).toContain(`FAIL: sequence ${sequence}: the event`);
    expect(result.out).toContain("altered");
    expect(result.status).toBe(1);
  });

  it("names the sequence of a deleted event", async () => {
    const tokens = await tenantWithEvents("deleted", 12);
    const sequence = (await lastSequence("deleted")) - 3;
    await tamper((sql) => sql`delete from events where tenant = 'deleted' and sequence = ${sequence}`);
    const result = await verify(app, tokens);
    expect(result.out).toContain(`FAIL: sequence ${sequence}: missing`);
    expect(result.status).toBe(1);
  });

  it("names swapped sequences", async () => {
    const tokens = await tenantWithEvents("swapped", 12);
    const last = await lastSequence("swapped");
    const [a, b] = [last - 8, last - 2];
    await tamper(async (sql) => {
      await sql`update events set sequence = -1 where tenant = 'swapped' and sequence = ${a}`;
      await sql`update events set sequence = ${a} where tenant = 'swapped' and sequence = ${b}`;
      await sql`update events set sequence = ${b} where tenant = 'swapped' and sequence = -1`;
    });
    const result = await verify(app, tokens);
    expect(result.out).toContain(`FAIL: sequence ${a}: not the event the log committed to there`);
    expect(result.out).toContain(`now at sequence ${b}`);
    expect(result.status).toBe(1);
  });

  it("names a forged event inserted after the last one, and the service refuses to write past it", async () => {
    const tokens = await tenantWithEvents("forged", 6);
    const last = await lastSequence("forged");
    await tamper(async (sql) => {
      await sql`
        insert into events (tenant, sequence, id, occurred_at, received_at, action, content_hash)
        select tenant, sequence + 1, 'not-from-the-service', occurred_at, received_at, 'invoice.refund', content_hash
        from events where tenant = 'forged' and sequence = ${last}`;
      await sql`update tenant_sequences set last_sequence = last_sequence + 1 where tenant = 'forged'`;
    });
    const result = await verify(app, tokens);
    expect(result.out).toContain(`FAIL: sequence ${last + 1}: stored, but not in the log's tree`);
    expect(result.status).toBe(1);
    // The tree and the events disagree: the next write fails rather than take the forged event into the tree.
    await expectError(clientFor(AuditService, app, "connect", tokens.writer).create({ event: { action: "x" } }), {
      code: Code.Internal,
    });
  });

  it("catches a truncated tail re-signed by the operator, from the checkpoint the tenant kept", async () => {
    const tokens = await tenantWithEvents("truncated", 15);
    const state = path.join(workDir, "truncated.checkpoint");
    expect((await verify(app, tokens, "--state", state)).status).toBe(0);
    const last = await lastSequence("truncated");
    const keep = last - 4;
    await tamper(async (sql) => {
      await sql`delete from events where tenant = 'truncated' and sequence > ${keep}`;
      await sql`update tenant_sequences set last_sequence = ${keep} where tenant = 'truncated'`;
      await sql`delete from log_heads where tenant = 'truncated'`;
      await sql`delete from log_tiles where tenant = 'truncated'`;
      await sql`delete from log_checkpoints where tenant = 'truncated'`;
    });
    // A new instance rebuilds the tree from what is left and signs it with the same key: consistent in itself.
    const rebuilt = await startTestApp({ database: { url: database.url, drop: async () => {} } });
    try {
      const fresh = await verify(rebuilt, tokens);
      expect(fresh.status).toBe(0);
      const result = await verify(rebuilt, tokens, "--state", state);
      expect(result.out).toContain(`FAIL: sequence ${keep + 1}…${last}: gone`);
      expect(result.status).toBe(1);
    } finally {
      await rebuilt.close();
    }
  });
});
