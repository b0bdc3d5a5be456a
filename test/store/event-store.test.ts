import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { systemClock } from "../../src/clock.js";
import { createLogger } from "../../src/logger.js";
import { rowToEvent } from "../../src/service/event-output.js";
import { connectDatabase, type Database } from "../../src/store/database.js";
import { type EventRow, EventStore } from "../../src/store/event-store.js";
import { GroupCommit } from "../../src/store/group-commit.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { everyEvent, newEvent } from "../support/events.js";
import { expectAll } from "../support/expect-all.js";

let testDb: TestDatabase;
let database: Database;
let store: EventStore;

beforeAll(async () => {
  testDb = await createTestDatabase();
  database = await connect(4);
  store = new EventStore(database.db);
});
afterAll(async () => {
  await database?.close();
  await testDb?.drop();
});

function connect(poolSize: number) {
  return connectDatabase(testDb.url, { poolSize, statementTimeoutMs: 10_000, logger: createLogger("warn") });
}

/**
 * The event as every protocol returns it, so two rows compare the way a client compares them. Deep equality, not
 * bytes: jsonb keeps object keys in its own order, so attributes read back may list them differently than sent.
 */
const wire = (row: EventRow) => rowToEvent(row);

async function sequencesOf(tenant: string): Promise<number[]> {
  const rows = await database.sql<{ sequence: string }[]>`
    select sequence from events where tenant = ${tenant} order by sequence`;
  return rows.map((r) => Number(r.sequence));
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe("append (BatchCreate)", () => {
  test("stores a batch in request order with gapless sequences; what it returns is what a List reads", async () => {
    const batch = [
      newEvent({ action: "a.one", actor: { id: "u1", roles: ["admin", 'quote"d'] }, attributes: { k: [1, "x"] } }),
      newEvent({ id: "client-id-1", action: "a.two", occurredAt: { seconds: 1_700_000_000n, nanos: 123_456_000 } }),
      newEvent({ action: "a.three", request: { ip: "10.0.0.1", durationMs: 1.5 }, outcome: { status: 2 } }),
    ];
    const result = await store.append("batch-order", batch, systemClock);
    if (!result.ok) throw new Error("expected the batch to be stored");
    expect(result.events.map((e) => [e.sequence, e.action])).toEqual([
      [1, "a.one"],
      [2, "a.two"],
      [3, "a.three"],
    ]);
    expect(result.events[1]?.id).toBe("client-id-1");
    expect(result.events[0]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);

    const listed = await store.list({
      tenant: "batch-order",
      limit: 10,
      newestFirst: false,
      ...everyEvent,
      nowMicros: systemClock.nowMicros(),
    });
    const bySequence = new Map(listed.map((row) => [row.sequence, row]));
    for (const returned of result.events) {
      const read = bySequence.get(returned.sequence);
      if (!read) throw new Error(`sequence ${returned.sequence} not listed`);
      expect(wire(read)).toEqual(wire(returned));
    }
  });

  test("a replay returns the stored events exactly, though sent later and in another order", async () => {
    const a = newEvent({ id: "replay-a", action: "x", attributes: { b: 1, a: 2 } });
    const b = newEvent({ id: "replay-b", action: "y" });
    const first = await store.append("replay", [a, b], systemClock);
    const again = await store.append("replay", [b, a], systemClock);
    if (!first.ok || !again.ok) throw new Error("expected both calls to succeed");
    expect(again.events.map(wire)).toEqual([first.events[1], first.events[0]].map((e) => wire(e as EventRow)));
    expect(await sequencesOf("replay")).toEqual([1, 2]);
  });

  test("one id stored with other content refuses the whole batch and writes nothing", async () => {
    await store.append("atomic", [newEvent({ id: "taken", action: "original" })], systemClock);
    const result = await store.append(
      "atomic",
      [newEvent({ action: "new-1" }), newEvent({ id: "taken", action: "changed" }), newEvent({ action: "new-2" })],
      systemClock,
    );
    expect(result).toEqual({ ok: false, conflictIndex: 1, id: "taken" });
    expect(await sequencesOf("atomic")).toEqual([1]);
    const next = await store.append("atomic", [newEvent({ action: "after" })], systemClock);
    expect(next.ok && next.events[0]?.sequence).toBe(2);
  });

  test("the same id in another tenant is another event", async () => {
    const one = await store.append("tenant-one", [newEvent({ id: "shared", action: "x" })], systemClock);
    const two = await store.append("tenant-two", [newEvent({ id: "shared", action: "y" })], systemClock);
    expect(one.ok && two.ok).toBe(true);
  });
});

describe("appendEach (group commit flush)", () => {
  test("events of several tenants in one statement; a conflict refuses only its own event", async () => {
    await store.append("each-a", [newEvent({ id: "dup", action: "stored" })], systemClock);
    const outcomes = await store.appendEach(
      [
        { tenant: "each-a", event: newEvent({ action: "a1" }) },
        { tenant: "each-b", event: newEvent({ action: "b1" }) },
        { tenant: "each-a", event: newEvent({ id: "dup", action: "other" }) },
        { tenant: "each-a", event: newEvent({ id: "dup2", action: "a2" }) },
        { tenant: "each-b", event: newEvent({ id: "dup", action: "b2" }) },
      ],
      systemClock,
    );
    expect(outcomes.map((o) => (o.kind === "stored" ? [o.row.tenant, o.row.sequence] : o))).toEqual([
      ["each-a", 2],
      ["each-b", 1],
      { kind: "conflict", id: "dup" },
      ["each-a", 3],
      ["each-b", 2],
    ]);
    const stamps = await database.sql<{ xmin: string }[]>`
      select distinct xmin::text from events where tenant in ('each-a', 'each-b') and sequence > ${0}
        and action <> 'stored'`;
    expect(stamps).toHaveLength(1);
  });
});

describe("two service instances on one database", () => {
  test("concurrent batches and group commits from two pools keep each tenant gapless, in commit order", async () => {
    const other = await connect(4);
    try {
      const stores = [store, new EventStore(other.db)];
      const commits = stores.map(
        (s) => new GroupCommit(s, systemClock, { maxBatch: 16, queueLimit: 1000, flushes: 3 }),
      );
      const tenants = ["two-a", "two-b"];
      // A reader sees a gapless prefix at every moment: a later sequence never commits before an earlier one.
      let writing = true;
      let snapshots = 0;
      const watcher = (async () => {
        while (writing) {
          const rows = await database.sql<{ tenant: string; n: string; top: string | null }[]>`
            select tenant, count(*) as n, max(sequence) as top from events where tenant in ${database.sql(tenants)}
            group by tenant`;
          for (const row of rows) expect(Number(row.top), row.tenant).toBe(Number(row.n));
          snapshots++;
        }
      })();
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 60; i++) {
        const tenant = tenants[i % 2] as string;
        const instance = Math.floor(i / 2) % 2;
        if (i % 3 === 0) {
          const batch = range(5).map((k) => newEvent({ action: `batch.${i}.${k}` }));
          writes.push((stores[instance] as EventStore).append(tenant, batch, systemClock));
        } else {
          writes.push((commits[instance] as GroupCommit).append(tenant, newEvent({ action: `one.${i}` })));
        }
      }
      const results = await Promise.all(writes);
      writing = false;
      await watcher;
      expectAll(results, (r) => (r as { ok: boolean }).ok, "results");
      expect(snapshots).toBeGreaterThan(0);
      // Per tenant: 10 batches of 5 and 20 single events.
      for (const tenant of tenants) expect(await sequencesOf(tenant)).toEqual(range(70));
    } finally {
      await other.close();
    }
  });

  test("the same id sent through both instances at once is stored once", async () => {
    const other = await connect(2);
    try {
      const stores = [store, new EventStore(other.db)];
      const event = newEvent({ id: "raced", action: "same" });
      const results = await Promise.all(
        range(10).map((i) => (stores[i % 2] as EventStore).append("race", [event], systemClock)),
      );
      const sequences = results.map((r) => (r.ok ? r.events[0]?.sequence : undefined));
      expect(new Set(sequences)).toEqual(new Set([1]));
      expect(await sequencesOf("race")).toEqual([1]);
    } finally {
      await other.close();
    }
  });
});

describe("list", () => {
  const base = {
    limit: 100,
    newestFirst: false,
    ...everyEvent,
    includeChildren: false,
    nowMicros: systemClock.nowMicros(),
  };
  const at = (second: number) => ({ seconds: BigInt(1_780_000_000 + second), nanos: 0 });

  beforeAll(async () => {
    const batch = [
      newEvent({ id: "e1", action: "project.create", actor: { id: "ann" }, occurredAt: at(1) }),
      newEvent({ id: "e2", action: "project_x", actor: { id: "bob" }, occurredAt: at(2), outcome: { status: 2 } }),
      newEvent({ id: "e3", action: "projectXcreate", actor: { id: "ann" }, occurredAt: at(3), category: "Devices" }),
      newEvent({ id: "e4", action: "user.login", actor: { id: "ann" }, occurredAt: at(3), parentId: "e1" }),
      newEvent({ id: "e5", action: "user.logout", target: { id: "t1", type: "device" }, occurredAt: at(5) }),
    ];
    const result = await store.append("listing", batch, systemClock);
    expect(result.ok).toBe(true);
  });

  const ids = async (q: Partial<typeof base> & { after?: { occurredAt: string; sequence: number } }) =>
    (await store.list({ ...base, tenant: "listing", ...q })).map((r) => r.id);

  test("filters: exact and prefix actions (LIKE wildcards in a prefix are literal), actor, outcome, target", async () => {
    expect(await ids({})).toEqual(["e1", "e2", "e3", "e5"]);
    expect(await ids({ includeChildren: true })).toEqual(["e1", "e2", "e3", "e4", "e5"]);
    expect(await ids({ actions: ["project_*"] })).toEqual(["e2"]);
    expect(await ids({ actions: ["project.*", "user.logout"] })).toEqual(["e1", "e5"]);
    expect(await ids({ actorId: "ann", includeChildren: true })).toEqual(["e1", "e3", "e4"]);
    expect(await ids({ outcomeStatus: 2 })).toEqual(["e2"]);
    expect(await ids({ targetId: "t1", targetType: "device" })).toEqual(["e5"]);
    expect(await ids({ category: "Devices" })).toEqual(["e3"]);
    expect(await ids({ parentId: "e1" })).toEqual(["e4"]);
  });

  test("time window and keyset pages in both orders", async () => {
    const window = { startTime: "2026-05-28T20:26:42.000000Z", endTime: "2026-05-28T20:26:45.000000Z" };
    expect(await ids({ ...window, includeChildren: true })).toEqual(["e2", "e3", "e4"]);
    const [first] = await store.list({ ...base, tenant: "listing", limit: 1, includeChildren: true, ...window });
    if (!first) throw new Error("expected a row");
    expect(await ids({ ...window, includeChildren: true, after: first })).toEqual(["e3", "e4"]);
    const newest = await store.list({ ...base, tenant: "listing", newestFirst: true, includeChildren: true, limit: 2 });
    expect(newest.map((r) => r.id)).toEqual(["e5", "e4"]);
    const last = newest[1] as EventRow;
    expect(await ids({ newestFirst: true, includeChildren: true, after: last })).toEqual(["e3", "e2", "e1"]);
  });

  test("drizzle builds each shape of query once; later calls with other values reuse its text and agree with it", async () => {
    const fresh = new EventStore(database.db);
    const build = vi.spyOn(fresh, "listQuery");
    const window = { startTime: "2026-05-28T20:26:42.000000Z", endTime: "2026-05-28T20:26:45.000000Z" };
    const shapes: Partial<typeof base>[] = [
      {},
      { actions: ["project_*", "user.logout"] },
      { actorId: "ann", includeChildren: true, outcomeStatus: 2, activeOnly: true },
      { ...window, targetId: "t1", targetType: "device", newestFirst: true },
      { parentId: "e1", eventName: "x" },
    ];
    const other: Partial<typeof base>[] = [
      { category: "" },
      { actions: ["user.*", "project.create"] },
      { actorId: "bob", includeChildren: true, outcomeStatus: 1, activeOnly: true },
      { ...window, startTime: "2026-05-28T20:26:40.000000Z", targetId: "x", targetType: "device", newestFirst: true },
      { parentId: "e2", eventName: "y" },
    ];
    // drizzle's own run of the statement, its raw int8 sequence made a number as list makes it.
    const viaDrizzle = async (q: typeof base & { tenant: string }) =>
      (await store.listQuery(q)).map((row) => ({ ...row, sequence: Number(row.sequence) }));
    for (const [i, q] of shapes.entries()) {
      const query = { ...base, tenant: "listing", ...q };
      expect(await fresh.list(query)).toEqual(await viaDrizzle(query));
      const second = { ...base, tenant: "listing", ...other[i] };
      expect(await fresh.list(second)).toEqual(await viaDrizzle(second));
    }
    expect(build).toHaveBeenCalledTimes(shapes.length);
  });
});
