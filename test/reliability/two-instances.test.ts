import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditEvent } from "../../gen/audit/v1/event_pb.js";
import { provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectAll } from "../support/expect-all.js";
import { type Attempt, newEvents, runLoad, send, type Writer } from "./load.js";
import { killAllServiceProcesses, type ServiceProcess, startServiceProcess } from "./service-process.js";
import { checkStore, describeSequences } from "./verify-store.js";

let database: TestDatabase;
let a: ServiceProcess;
let b: ServiceProcess;
let writers: Writer[];

beforeAll(async () => {
  database = await createTestDatabase();
  // Both start on the empty database at once: the migrations run under an advisory lock, once.
  a = await startServiceProcess({ databaseUrl: database.url });
  b = await startServiceProcess({ databaseUrl: database.url, adminToken: a.adminToken });
  writers = await Promise.all(
    ["dual-a", "dual-b"].map(async (tenant) => ({ tenant, token: (await provisionTenant(a, tenant)).writer })),
  );
});

afterAll(async () => {
  await killAllServiceProcesses();
  await database?.drop();
});

const tokenOf = (tenant: string) => writers.find((w) => w.tenant === tenant)?.token as string;

/** The same call sent to both instances at the same moment. */
async function race(first: Attempt, second: Attempt): Promise<void> {
  await Promise.all([send(a.url, tokenOf(first.tenant), first), send(b.url, tokenOf(second.tenant), second)]);
}

describe("two instances on one database", () => {
  it("keep per-tenant sequences gapless under concurrent writers on both", async () => {
    const stop = new AbortController();
    const loads = [a, b].map((service, i) =>
      runLoad({ url: service.url, writers, workers: 6, maxBatch: 30, prefix: `dual${i}`, signal: stop.signal }),
    );
    await sleep(2500);
    stop.abort();
    const [onA, onB] = await Promise.all(loads);
    const attempts = [...(onA ?? []), ...(onB ?? [])];
    const check = await checkStore(database.url, attempts);
    const acked = (list: Attempt[] = []) => list.filter((x) => x.outcome === "acked").length;
    console.log(
      `two instances: ${attempts.length} calls (A ${acked(onA)} acked of ${onA?.length}, B ${acked(onB)} of ` +
        `${onB?.length}); acknowledged ${check.ackedEvents}, found ${check.ackedFound}, duplicated ` +
        `${check.duplicated.length}; ${describeSequences(check)}`,
    );
    expect(attempts.filter((x) => x.outcome !== "acked").map((x) => x.message)).toEqual([]);
    expect(acked(onA)).toBeGreaterThan(0);
    expect(acked(onB)).toBeGreaterThan(0);
    expect(check.ackedFound).toBe(check.ackedEvents);
    expect(check.stored).toBe(check.ackedEvents);
    expect(check.duplicated).toEqual([]);
    expect(check.wrongSequence).toEqual([]);
    expectAll(check.tenants, (t) => t.gapless, "check.tenants");
  }, 60_000);

  it("store one event when the same id reaches both at once, and refuse the loser of a conflict", async () => {
    const pairs: [Attempt, Attempt][] = [];
    const attempt = (tenant: string, kind: Attempt["kind"], events: Attempt["events"]): Attempt => ({
      kind,
      tenant,
      events,
      outcome: "pending",
    });
    // Identical content: 30 single events and 10 batches of 5, each sent to both instances at once.
    for (let i = 0; i < 30; i++) {
      const tenant = (writers[i % 2] as Writer).tenant;
      const events = newEvents("same", 1);
      pairs.push([attempt(tenant, "create", events), attempt(tenant, "create", events)]);
    }
    for (let i = 0; i < 10; i++) {
      const tenant = (writers[i % 2] as Writer).tenant;
      const events = newEvents("same-batch", 5);
      pairs.push([attempt(tenant, "batch", events), attempt(tenant, "batch", events)]);
    }
    await Promise.all(pairs.map(([x, y]) => race(x, y)));
    const sameAnswers = pairs.filter(
      ([x, y]) => x.outcome === "acked" && y.outcome === "acked" && x.sequences?.join() === y.sequences?.join(),
    ).length;

    // Same id, different content (another action): exactly one wins, the other gets ALREADY_EXISTS.
    const conflicts: [Attempt, Attempt][] = [];
    for (let i = 0; i < 20; i++) {
      const tenant = (writers[i % 2] as Writer).tenant;
      const [event, other] = newEvents("clash", 2) as [AuditEvent, AuditEvent];
      other.id = event.id;
      other.action = "reliability.other";
      conflicts.push([attempt(tenant, "create", [event]), attempt(tenant, "create", [other])]);
    }
    await Promise.all(conflicts.map(([x, y]) => race(x, y)));
    const outcomes = conflicts.map(([x, y]) =>
      [x, y]
        .map((z) => (z.outcome === "acked" ? "OK" : Code[z.code ?? Code.Unknown]))
        .sort()
        .join("+"),
    );
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    const stored = await sql<{ id: string; action: string }[]>`
      select id, action from events where id = any(${conflicts.map(([x]) => x.events[0]?.id ?? "")})`;
    await sql.end();
    const winnersStored = conflicts.filter(([x, y]) => {
      const winner = x.outcome === "acked" ? x : y;
      const rows = stored.filter((r) => r.id === winner.events[0]?.id);
      return rows.length === 1 && rows[0]?.action === winner.events[0]?.action;
    }).length;

    const all = [...pairs.flat(), ...conflicts.flat()];
    const check = await checkStore(database.url, all);
    console.log(
      `two instances, same id at once: ${pairs.length} pairs (30 Create, 10 BatchCreate of 5), both answered ` +
        `with the same stored events ${sameAnswers}/${pairs.length}; conflicting pairs ${conflicts.length}: ` +
        `${countOf(outcomes)}, winner's content stored once ${winnersStored}/${conflicts.length}; ` +
        `duplicated ${check.duplicated.length}; ${describeSequences(check)}`,
    );
    expect(sameAnswers).toBe(pairs.length);
    expect(outcomes).toEqual(conflicts.map(() => "AlreadyExists+OK"));
    expect(winnersStored).toBe(conflicts.length);
    expect(check.duplicated).toEqual([]);
    expect(check.wrongSequence).toEqual([]);
    expect(check.lost).toEqual([]);
    expectAll(check.tenants, (t) => t.gapless, "check.tenants");
  }, 60_000);
});

function countOf(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].map(([v, n]) => `${n}x ${v}`).join(", ");
}
