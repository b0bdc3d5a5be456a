import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { connectDatabase, type Database } from "../../src/store/database.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectAll } from "../support/expect-all.js";
import { TcpProxy } from "../support/tcp-proxy.js";

let testDatabase: TestDatabase;
let proxy: TcpProxy;
let database: Database;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  const direct = new URL(testDatabase.url);
  proxy = new TcpProxy({ host: direct.hostname, port: Number(direct.port) });
  await proxy.start();
  const viaProxy = new URL(testDatabase.url);
  viaProxy.port = String(proxy.port);
  database = await connectDatabase(viaProxy.toString(), {
    poolSize: 4,
    statementTimeoutMs: 10_000,
    logger: createLogger("silent"),
  });
});

afterAll(async () => {
  await database?.close(1);
  await proxy?.cut();
  await testDatabase?.drop();
});

/** The error code postgres.js gives a query, as the error mapping reads it. */
async function failure(query: Promise<unknown>): Promise<string> {
  return query.then(
    () => "ok",
    (error: { code?: string; cause?: { code?: string } }) => error.cause?.code ?? error.code ?? String(error),
  );
}

describe("the database connection drops under a transaction", () => {
  // postgres.js 3.4.9 and 3.4.10 send the transaction's ROLLBACK on the dead connection, from a setImmediate, which
  // crashes the process with an uncatchable TypeError (porsager/postgres#1208); 4.x does not.
  it("rejects the transaction, keeps the process alive, and serves again as soon as the database is back", async () => {
    const cuts = ["close", "reset", "close", "reset"] as const;
    const codes: string[] = [];
    const recoveries: number[] = [];
    for (const how of cuts) {
      const transactions = Array.from({ length: 3 }, () =>
        failure(
          database.db.transaction(async (tx) => {
            await tx.execute(sql`select 1`);
            await tx.execute(sql`select pg_sleep(5)`);
          }),
        ),
      );
      await sleep(300);
      const cutAt = performance.now();
      await proxy.cut(how);
      codes.push(...(await Promise.all(transactions)));
      const failedAfter = performance.now() - cutAt;
      expect(failedAfter).toBeLessThan(1000);
      // Give a deferred write on a dead connection the chance to run (and, unpatched, to throw).
      await sleep(50);
      expect(await failure(database.sql`select 1`)).not.toBe("ok");
      await proxy.restore();
      const restoredAt = performance.now();
      while ((await failure(database.sql`select 1`)) !== "ok") {
        expect(performance.now() - restoredAt).toBeLessThan(3000);
        await sleep(20);
      }
      recoveries.push(Math.round(performance.now() - restoredAt));
      // Every connection of the pool works again, none is left waiting on a write that will never be sent.
      const all = await Promise.all(Array.from({ length: 8 }, () => failure(database.sql`select pg_sleep(0.05)`)));
      expect(all).toEqual(Array(8).fill("ok"));
    }
    const distinct = [...new Set(codes)];
    console.log(
      `connection loss: ${cuts.length} cuts (${cuts.join(", ")}) with 3 transactions in flight each; transactions failed with ${distinct.join(", ")}; ` +
        `queries served again ${recoveries.join(", ")} ms after the database returned; process alive`,
    );
    expectAll(codes, (c) => c !== "ok", "codes");
    expect(await database.ping()).toBe(true);
  }, 30_000);
});
