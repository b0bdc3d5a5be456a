import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { connectDatabase, type Database } from "../../src/store/database.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectAll } from "../support/expect-all.js";
import { until } from "../support/held-writes.js";
import { TcpProxy } from "../support/tcp-proxy.js";

/** What would end a transaction whose connection is gone but not noticed: failing before it is failing on the cut. */
const STATEMENT_TIMEOUT_MS = 20_000;

let testDatabase: TestDatabase;
let proxy: TcpProxy;
let database: Database;
/** A direct connection, past the proxy: it sees the server's side (pg_stat_activity) while the proxy is cut. */
let direct: postgres.Sql;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  const directUrl = new URL(testDatabase.url);
  proxy = new TcpProxy({ host: directUrl.hostname, port: Number(directUrl.port) });
  await proxy.start();
  const viaProxy = new URL(testDatabase.url);
  viaProxy.port = String(proxy.port);
  database = await connectDatabase(viaProxy.toString(), {
    poolSize: 4,
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    logger: createLogger("silent"),
  });
  direct = postgres(testDatabase.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await direct?.end();
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
    for (const [round, how] of cuts.entries()) {
      // Marked by round: the server ends a previous round's orphaned sleeps only at the statement timeout.
      const sleeping = `select pg_sleep(30) -- cut ${round}`;
      const transactions = Array.from({ length: 3 }, () =>
        failure(
          database.db.transaction(async (tx) => {
            await tx.execute(sql`select 1`);
            await tx.execute(sql.raw(sleeping));
          }),
        ),
      );
      // Cut while all three are inside their transaction, asleep on the server.
      await until("the three transactions sleep on the server", async () => {
        const [row] = await direct`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and query = ${sleeping} and state = 'active'`;
        return row?.n === 3;
      });
      const cutAt = performance.now();
      await proxy.cut(how);
      const failed = await Promise.all(transactions);
      const failedAfter = performance.now() - cutAt;
      codes.push(...failed);
      // They failed because the connection went, not by the statement timeout (57014), which comes much later.
      expect(failed.filter((c) => c === "ok" || c === "57014")).toEqual([]);
      expect(failedAfter).toBeLessThan(STATEMENT_TIMEOUT_MS / 2);
      // Give a deferred write on a dead connection (a setImmediate) the chance to run (and, unpatched, to throw).
      await new Promise((resolve) => setImmediate(resolve));
      expect(await failure(database.sql`select 1`)).not.toBe("ok");
      await proxy.restore();
      const restoredAt = performance.now();
      await until("queries are served again", async () => (await failure(database.sql`select 1`)) === "ok");
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
  }, 120_000);
});
