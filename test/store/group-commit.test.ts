import { Code } from "@connectrpc/connect";
import { beforeAll, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { systemClock } from "../../src/clock.js";
import { DomainError, reasonOf } from "../../src/errors.js";
import { toConnectError } from "../../src/interceptors/error-mapping.js";
import { createLogger } from "../../src/logger.js";
import { type AppendResult, EventStore, type NewEvent } from "../../src/store/event-store.js";
import { GroupCommit } from "../../src/store/group-commit.js";
import { pgTimestampMicros } from "../../src/store/time.js";
import { connectedTestDatabase } from "../support/database.js";
import { newEvent } from "../support/events.js";

const connected = connectedTestDatabase({ poolSize: 4 });
let store: EventStore;

beforeAll(async () => {
  store = new EventStore(connected.database.db);
});

/** Counts the statements the committer sends, so a test can tell one group from several. */
function countingStore() {
  const flushes: number[] = [];
  return {
    flushes,
    appendEach: (...args: Parameters<EventStore["appendEach"]>) => {
      flushes.push(args[0].length);
      return store.appendEach(...args);
    },
  };
}

async function rowsOf(tenant: string) {
  return connected.database.sql<{ sequence: string; id: string; action: string; tx: string }[]>`
    select sequence, id, action, xmin::text as tx from events where tenant = ${tenant} order by sequence`;
}

function stored(result: AppendResult) {
  if (!result.ok) throw new Error(`expected a stored event, got a conflict on ${result.id}`);
  const [event] = result.events;
  if (!event) throw new Error("expected one event");
  return event;
}

test("concurrent appends of several tenants share one transaction, each tenant numbered on its own", async () => {
  const counting = countingStore();
  const commit = new GroupCommit(counting, systemClock, { maxBatch: 500, queueLimit: 1000, flushes: 1 });
  const calls = ["mix-a", "mix-b", "mix-a", "mix-c", "mix-b", "mix-a"].map((tenant, i) =>
    commit.append(tenant, newEvent({ action: `act.${i}` })),
  );
  const results = (await Promise.all(calls)).map(stored);
  expect(results.map((e) => [e.tenant, e.sequence, e.action])).toEqual([
    ["mix-a", 1, "act.0"],
    ["mix-b", 1, "act.1"],
    ["mix-a", 2, "act.2"],
    ["mix-c", 1, "act.3"],
    ["mix-b", 2, "act.4"],
    ["mix-a", 3, "act.5"],
  ]);
  expect(counting.flushes).toEqual([6]);
  const transactions = new Set(
    (await Promise.all(["mix-a", "mix-b", "mix-c"].map(rowsOf))).flat().map((row) => row.tx),
  );
  expect(transactions.size).toBe(1);
});

test("a conflict or a bad row fails only its own caller", async () => {
  await store.append("errors", [newEvent({ id: "taken", action: "original" })], systemClock);
  const counting = countingStore();
  const commit = new GroupCommit(counting, systemClock, { maxBatch: 500, queueLimit: 1000, flushes: 1 });
  // Validation would stop this one at the handler; a row PostgreSQL refuses stands for any such failure.
  const unparsable: NewEvent = { ...newEvent({ action: "bad" }), occurredAt: "not a time" };
  const calls = [
    commit.append("errors", newEvent({ action: "ok.1" })),
    commit.append("errors", newEvent({ id: "taken", action: "changed" })),
    commit.append("errors", unparsable),
    commit.append("errors-other", newEvent({ action: "ok.2" })),
    commit.append("errors", newEvent({ action: "ok.3" })),
  ];
  const [ok1, conflict, bad, ok2, ok3] = await Promise.allSettled(calls);
  expect(ok1?.status === "fulfilled" && stored(ok1.value).action).toBe("ok.1");
  expect(conflict?.status === "fulfilled" && conflict.value).toEqual({ ok: false, conflictIndex: 0, id: "taken" });
  expect(bad?.status).toBe("rejected");
  expect(bad?.status === "rejected" && (bad.reason as { code?: string }).code).toBe("22007");
  expect(ok2?.status === "fulfilled" && stored(ok2.value).action).toBe("ok.2");
  expect(ok3?.status === "fulfilled" && stored(ok3.value).action).toBe("ok.3");
  // The group failed once as a whole, then was split until the bad row stood alone.
  expect(counting.flushes[0]).toBe(5);
  expect(counting.flushes.length).toBeGreaterThan(2);
  expect((await rowsOf("errors")).map((r) => [Number(r.sequence), r.action])).toEqual([
    [1, "original"],
    [2, "ok.1"],
    [3, "ok.3"],
  ]);
});

test("the same id twice in one group: stored once, the same content gets it, other content a conflict", async () => {
  const commit = new GroupCommit(store, systemClock, { maxBatch: 500, queueLimit: 1000, flushes: 1 });
  const event = newEvent({ id: "twice", action: "same" });
  const [first, second, differing, unrelated] = await Promise.all([
    commit.append("twice", event),
    commit.append("twice", event),
    commit.append("twice", newEvent({ id: "twice", action: "different" })),
    commit.append("twice", newEvent({ action: "unrelated" })),
  ]);
  const a = stored(first as AppendResult);
  const b = stored(second as AppendResult);
  expect([a.sequence, a.id]).toEqual([1, "twice"]);
  expect(b.sequence).toBe(1);
  // The second caller gets the stored event: the first one's arrival time, not its own.
  expect(pgTimestampMicros(b.receivedAt)).toBe(pgTimestampMicros(a.receivedAt));
  expect(differing).toEqual({ ok: false, conflictIndex: 0, id: "twice" });
  expect(stored(unrelated as AppendResult).sequence).toBe(2);
  expect((await rowsOf("twice")).map((r) => r.id)).toEqual(["twice", expect.any(String)]);
});

test("a full queue refuses new appends with RESOURCE_EXHAUSTED and INGEST_QUEUE_FULL", async () => {
  const commit = new GroupCommit(store, systemClock, { maxBatch: 2, queueLimit: 3, flushes: 1 });
  const results = await Promise.allSettled(
    Array.from({ length: 8 }, (_, i) => commit.append("queue-full", newEvent({ action: `q.${i}` }))),
  );
  expect(results.map((r) => r.status)).toEqual([
    "fulfilled",
    "fulfilled",
    "fulfilled",
    "rejected",
    "rejected",
    "rejected",
    "rejected",
    "rejected",
  ]);
  // The store's error is a domain error; the one mapping interceptor gives it its wire form.
  const refused = (results[3] as PromiseRejectedResult).reason;
  expect(refused).toBeInstanceOf(DomainError);
  expect(refused).toMatchObject({ code: Code.ResourceExhausted, reason: "INGEST_QUEUE_FULL" });
  const mapped = toConnectError(refused, "request-1", AuditService.method.create, createLogger("silent"));
  expect(mapped.code).toBe(Code.ResourceExhausted);
  expect(reasonOf(mapped)).toBe("INGEST_QUEUE_FULL");
  expect(mapped.rawMessage).toBe((refused as DomainError).message);
  // Once the queue has drained, appends are accepted again.
  await commit.idle();
  expect(stored(await commit.append("queue-full", newEvent({ action: "later" }))).sequence).toBe(4);
});

test("100 concurrent appends in each of three tenants get sequences 1..100, a tenant in one flush at a time, tenants' flushes overlapping", async () => {
  const tenants = ["hundred-a", "hundred-b", "hundred-c"];
  const sizes: number[] = [];
  const writing = new Map<string, number>();
  let inFlight = 0;
  let mostInFlight = 0;
  let mostOfOneTenant = 0;
  const tracking = {
    appendEach: async (...args: Parameters<EventStore["appendEach"]>) => {
      const of = new Set(args[0].map((item) => item.tenant));
      sizes.push(args[0].length);
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      for (const tenant of of) {
        writing.set(tenant, (writing.get(tenant) ?? 0) + 1);
        mostOfOneTenant = Math.max(mostOfOneTenant, writing.get(tenant) ?? 0);
      }
      try {
        return await store.appendEach(...args);
      } finally {
        inFlight--;
        for (const tenant of of) writing.set(tenant, (writing.get(tenant) ?? 0) - 1);
      }
    },
  };
  const commit = new GroupCommit(tracking, systemClock, { maxBatch: 7, queueLimit: 1000, flushes: 3 });
  // Each tenant's events in a block, so the first flush holds one tenant and the others find work of their own.
  const results = await Promise.all(
    tenants.flatMap((tenant) =>
      Array.from({ length: 100 }, (_, i) => commit.append(tenant, newEvent({ action: `h.${i}` })).then(stored)),
    ),
  );
  for (const [t, tenant] of tenants.entries()) {
    const sequences = results.slice(t * 100, (t + 1) * 100).map((row) => row.sequence);
    expect([...sequences].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect((await rowsOf(tenant)).map((r) => Number(r.sequence))).toEqual(sequences.sort((x, y) => x - y));
  }
  expect(Math.max(...sizes)).toBe(7);
  expect(mostOfOneTenant).toBe(1);
  expect(mostInFlight).toBe(3);
});
