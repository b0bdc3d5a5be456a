import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import postgres from "postgres";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { connectTail, deliversWithin, read, type TailOpener } from "./tail-clients.js";

/** A TCP relay to PostgreSQL that a test can cut: every connection through it drops and new ones are refused. */
class CuttableProxy {
  private readonly sockets = new Set<net.Socket>();
  private cut = false;
  private readonly server: net.Server;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      if (this.cut) {
        client.destroy();
        return;
      }
      const upstream = net.connect(target.port, target.host);
      for (const [from, to] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(from);
        from.pipe(to);
        from.on("error", () => to.destroy());
        from.on("close", () => {
          this.sockets.delete(from);
          to.destroy();
        });
      }
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  drop(): void {
    this.cut = true;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.cut = false;
  }

  close(): Promise<void> {
    this.drop();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let database: TestDatabase;
let proxy: CuttableProxy;
let a: TestApp;
let b: TestApp;
let tailA: TailOpener;
let auditB: ReturnType<typeof createClient<typeof AuditService>>;
let sql: postgres.Sql;

beforeAll(async () => {
  database = await createTestDatabase();
  const url = new URL(database.url);
  proxy = new CuttableProxy({ host: url.hostname, port: Number(url.port) });
  await proxy.listen();
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxy.port);
  // A reaches the database only through the proxy; B directly.
  a = await startTestApp({ database: { url: viaProxy.toString(), drop: async () => {} } });
  b = await startTestApp({ database });
  tailA = connectTail(createConnectTransport({ baseUrl: a.url, httpVersion: "2" }));
  auditB = createClient(AuditService, createConnectTransport({ baseUrl: b.url, httpVersion: "1.1" }));
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await Promise.all([a?.close(), b?.close()]);
  await proxy?.close();
  await database?.drop();
});

const create = (tenant: string, n: number) =>
  auditB.batchCreate({ tenant, events: Array.from({ length: n }, () => ({ action: "x" })) });

test("many Tail streams share one LISTEN connection per instance and no connection each", async () => {
  const streams = Array.from({ length: 30 }, (_, i) => tailA({ tenant: `many-${i % 3}`, afterSequence: 0n }));
  await Promise.all([create("many-0", 2), create("many-1", 2), create("many-2", 2)]);
  for (const stream of streams) expect(await read(stream, 2)).toHaveLength(2);
  const [counts] = await sql`
    select count(*) filter (where query ilike 'listen%') as listening, count(*) as total
    from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`;
  // One LISTEN each for A and B; everything else is their pools (10 each by default).
  expect(Number(counts?.listening)).toBe(2);
  expect(Number(counts?.total)).toBeLessThanOrEqual(22);
  for (const stream of streams) stream.close();
});

test("after losing its database connections, an instance catches up by sequence: no gap, no duplicate", async () => {
  const tenant = "outage";
  const stream = tailA({ tenant, afterSequence: 0n });
  await create(tenant, 1);
  expect((await read(stream, 1)).map((e) => e.sequence)).toEqual([1n]);

  proxy.drop();
  // Stored while A hears nothing: only the catch-up after A listens again can deliver these.
  await create(tenant, 5);
  await create(tenant, 5);
  await new Promise((r) => setTimeout(r, 500));
  proxy.restore();

  expect((await read(stream, 10, 30_000)).map((e) => e.sequence)).toEqual(
    Array.from({ length: 10 }, (_, i) => BigInt(i + 2)),
  );
  // And A follows new commits again.
  await create(tenant, 1);
  expect((await read(stream, 1)).map((e) => e.sequence)).toEqual([12n]);
  expect(await deliversWithin(stream, 300)).toBeUndefined();
}, 60_000);
