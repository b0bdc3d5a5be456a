import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { nextIsMarker, read, tailClients } from "./tail-clients.js";

let database: TestDatabase;
let proxy: TcpProxy;
let a: TestApp;
let b: TestApp;
let sql: postgres.Sql;
const closers: (() => void)[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  const url = new URL(database.url);
  proxy = new TcpProxy({ host: url.hostname, port: Number(url.port) });
  await proxy.start();
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxy.port);
  // A reaches the database only through the proxy; B directly. They share the superadmin token.
  const env = { AUDIT_ADMIN_TOKEN: `at_test_${randomBytes(24).toString("base64url")}` };
  a = await startTestApp({ database: { url: viaProxy.toString(), drop: async () => {} }, env });
  b = await startTestApp({ database, env });
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  for (const close of closers) close();
  await sql?.end();
  await Promise.all([a?.close(), b?.close()]);
  await proxy?.cut();
  await database?.drop();
});

/** Tail on A, writes on B. */
async function tenantOf(tenant: string) {
  const tokens = await provisionTenant(b, tenant);
  const tails = tailClients(a, tokens.reader);
  closers.push(tails.close);
  const writer = clientFor(AuditService, b, "connect", tokens.writer);
  const create = (n: number) => writer.batchCreate({ events: Array.from({ length: n }, () => ({ action: "x" })) });
  return { tail: tails["connect-binary"], create, first: tokens.firstSequence };
}

test("many Tail streams share one LISTEN connection per instance and no connection each", async () => {
  const tenants = await Promise.all([0, 1, 2].map((i) => tenantOf(`many-${i}`)));
  const streams = Array.from({ length: 30 }, (_, i) => tenants[i % 3]?.tail({ afterSequence: 0n }));
  await Promise.all(tenants.map((t) => t.create(2)));
  for (const stream of streams) expect(stream && (await read(stream, 2))).toHaveLength(2);
  const [counts] = await sql`
    select count(*) filter (where query ilike 'listen%') as listening, count(*) as total
    from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
  // One LISTEN each for A and B; everything else is their pools (10 each by default).
  expect(Number(counts?.listening)).toBe(2);
  expect(Number(counts?.total)).toBeLessThanOrEqual(22);
  for (const stream of streams) stream?.close();
});

test("after losing its database connections, an instance catches up by sequence: no gap, no duplicate", async () => {
  const { tail, create, first } = await tenantOf("outage");
  const stream = tail({ afterSequence: 0n });
  await create(1);
  expect((await read(stream, 1)).map((e) => e.sequence)).toEqual([first]);

  await proxy.cut();
  // Stored while A hears nothing: only the catch-up after A listens again can deliver these.
  await create(5);
  await create(5);
  await proxy.restore();

  expect((await read(stream, 10, 30_000)).map((e) => e.sequence)).toEqual(
    Array.from({ length: 10 }, (_, i) => first + 1n + BigInt(i)),
  );
  // And A follows new commits again.
  await create(1);
  expect((await read(stream, 1)).map((e) => e.sequence)).toEqual([first + 11n]);
  await nextIsMarker(stream, async () => (await create(1)).events[0]?.id);
}, 60_000);
