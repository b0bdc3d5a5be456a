import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectAll } from "../support/expect-all.js";
import { seededRandom, TEST_SEED } from "../support/random.js";
import { type Attempt, runLoad, send, tally, type Writer } from "./load.js";
import { killAllServiceProcesses, type ServiceProcess, startServiceProcess } from "./service-process.js";
import { checkStore, describeSequences } from "./verify-store.js";

const ROUNDS = 4;

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await killAllServiceProcesses();
  await database?.drop();
});

describe("kill -9 under load", () => {
  it(`keeps every acknowledged event exactly once with gapless sequences, ${ROUNDS} rounds`, async () => {
    let service: ServiceProcess = await startServiceProcess({ databaseUrl: database.url });
    const start = { databaseUrl: database.url, adminToken: service.adminToken };
    const writers: Writer[] = await Promise.all(
      ["crash-a", "crash-b", "crash-c"].map(async (tenant) => ({
        tenant,
        token: (await provisionTenant(service, tenant)).writer,
      })),
    );
    const tokenOf = new Map(writers.map((w) => [w.tenant, w.token]));
    const attempts: Attempt[] = [];
    const random = seededRandom();
    console.log(`crash: TEST_SEED=${TEST_SEED}`);

    for (let round = 1; round <= ROUNDS; round++) {
      const stop = new AbortController();
      const load = runLoad({
        url: service.url,
        writers,
        workers: 8,
        maxBatch: 40,
        prefix: `crash${round}`,
        signal: stop.signal,
        random,
      });
      await sleep(1000 + random() * 1500);
      service.signal("SIGKILL");
      const status = await service.exited;
      stop.abort();
      const roundAttempts = await load;
      attempts.push(...roundAttempts);
      expect(status.signal).toBe("SIGKILL");

      service = await startServiceProcess(start);
      const counts = tally(roundAttempts);
      const failedCodes = countCodes(roundAttempts);
      const check = await checkStore(database.url, attempts);
      console.log(
        `crash ${round}/${ROUNDS}: calls ${counts.calls} (acked ${counts.ackedCalls}, cut off ${counts.failedCalls}: ${failedCodes}); ` +
          `acknowledged ${check.ackedEvents}, found ${check.ackedFound}, lost ${check.lost.length}, ` +
          `duplicated ${check.duplicated.length}; unacked calls whole ${check.unackedWholeCalls} ` +
          `(${check.unackedWholeEvents} events), absent ${check.unackedAbsentCalls}, partial ${check.partialCalls}; ` +
          `unknown ${check.unknown}; ${describeSequences(check)}`,
      );
      expect(counts.ackedCalls).toBeGreaterThan(0);
      expect(check.lost).toEqual([]);
      expect(check.duplicated).toEqual([]);
      expect(check.wrongSequence).toEqual([]);
      expect(check.ackedFound).toBe(check.ackedEvents);
      expect(check.partialCalls).toBe(0);
      expect(check.unknown).toBe(0);
      expectAll(check.tenants, (t) => t.gapless, "check.tenants");

      // A client retries what it never heard back about, with the same ids: each lands exactly once, and a call that
      // had committed before the crash answers with the events already stored.
      const unacked = attempts.filter((a) => a.outcome !== "acked");
      await Promise.all(unacked.map((a) => send(service.url, tokenOf.get(a.tenant) as string, a)));
      const retried = await checkStore(database.url, attempts);
      console.log(
        `crash ${round}/${ROUNDS} retry: resent ${unacked.length} calls, acked ${unacked.filter((a) => a.outcome === "acked").length}; ` +
          `acknowledged ${retried.ackedEvents}, found ${retried.ackedFound}, stored ${retried.stored}, ` +
          `duplicated ${retried.duplicated.length}; ${describeSequences(retried)}`,
      );
      expect(unacked.filter((a) => a.outcome !== "acked").map((a) => a.code)).toEqual([]);
      expect(retried.ackedFound).toBe(retried.ackedEvents);
      expect(retried.stored).toBe(retried.ackedEvents);
      expect(retried.duplicated).toEqual([]);
      expect(retried.wrongSequence).toEqual([]);
      expectAll(retried.tenants, (t) => t.gapless, "retried.tenants");
    }
  }, 180_000);
});

function countCodes(attempts: Attempt[]): string {
  const counts = new Map<string, number>();
  for (const a of attempts) {
    if (a.outcome !== "failed") continue;
    const name = Code[a.code ?? Code.Unknown];
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([code, n]) => `${n} ${code}`).join(", ") || "none";
}
