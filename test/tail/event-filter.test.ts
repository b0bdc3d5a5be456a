import { randomBytes } from "node:crypto";
import { create, ScalarType } from "@bufbuild/protobuf";
import fc from "fast-check";
import { beforeAll, expect, test } from "vitest";
import { EventFilterSchema } from "../../gen/audit/v1/audit_service_pb.js";
import type { FieldViolation } from "../../src/errors.js";
import { readFilter } from "../../src/service/filter-input.js";
import { compileFilter, type EventFilter, filterMatches } from "../../src/store/event-filter.js";
import { type EventRow, EventStore, type NewEvent } from "../../src/store/event-store.js";
import { microsToIso } from "../../src/store/time.js";
import { connectedTestDatabase } from "../support/database.js";
import { everyEvent } from "../support/events.js";

// Small value sets, so random filters often match some rows and often not others; the actions include LIKE's
// wildcards and escape character, which a prefix filter must treat literally.
const actions = ["a", "a.b", "a.bc", "ab", "a%b", "a_b", "a\\b", "B", "job.finished"];
const texts = ["", "x", "y", "X"];
// "audit-trail.admin": the service's own records, left out unless the filter names their category.
const categories = ["", "universal_event", "other", "audit-trail.admin"];
const parents = ["", "p1", "p2"];
const NOW = 1_790_000_000_000_000n;
const minutes = (n: number) => NOW + BigInt(n) * 60_000_000n;
const instants = [-90, -30, -1, 0, 1, 30].map(minutes);

const connected = connectedTestDatabase({ poolSize: 4 });
let store: EventStore;
let rows: EventRow[];

beforeAll(async () => {
  store = new EventStore(connected.database.db);
  const pick = <T>(values: readonly T[], i: number, salt: number) =>
    values[(i * 7 + salt * 13 + (i >> 2)) % values.length] as T;
  const batch: NewEvent[] = Array.from({ length: 240 }, (_, i) => ({
    id: "",
    occurredAt: microsToIso(pick(instants, i, 1)),
    completedAt: null,
    expiresAt: i % 3 === 0 ? null : microsToIso(pick(instants, i, 2)),
    source: pick(texts, i, 3),
    action: pick(actions, i, 4),
    category: pick(categories, i, 5),
    actorId: pick(texts, i, 6),
    actorType: "",
    actorName: pick(texts, i, 7),
    actorEmail: "",
    actorRoles: [],
    targetId: pick(texts, i, 8),
    targetType: pick(texts, i, 9),
    targetName: "",
    outcomeStatus: i % 3,
    outcomeCode: "",
    outcomeMessage: "",
    request: null,
    attributes: null,
    parentId: pick(parents, i, 10),
    contentHash: randomBytes(32),
  }));
  const result = await store.append("props", batch, { nowMicros: () => NOW });
  if (!result.ok) throw new Error("append failed");
  rows = await store.range({ tenant: "props", afterSequence: 0, nowMicros: NOW, limit: 1000 });
});

// Mostly unset, so that several conditions together still leave rows to compare.
const maybe = <T>(arb: fc.Arbitrary<T>, empty: T) =>
  fc.oneof({ arbitrary: fc.constant(empty), weight: 3 }, { arbitrary: arb, weight: 1 });
const prefixes = [...new Set(actions.flatMap((a) => Array.from(a, (_, i) => a.slice(0, i + 1))))];
const filterArb: fc.Arbitrary<EventFilter> = fc.record({
  startTime: fc.option(fc.constantFrom(...instants).map(microsToIso), { nil: undefined }),
  endTime: fc.option(fc.constantFrom(...instants).map(microsToIso), { nil: undefined }),
  actions: maybe(
    fc.array(
      fc.oneof(
        fc.constantFrom(...actions),
        fc.constantFrom(...prefixes).map((p) => `${p}*`),
        // Found inside actions but not at their start: a prefix match must not take them.
        fc.constantFrom("b", "%", "_", "\\", ".b", "finished").map((p) => `${p}*`),
      ),
      { minLength: 1, maxLength: 3 },
    ),
    [],
  ),
  actorId: maybe(fc.constantFrom(...texts), ""),
  actorName: maybe(fc.constantFrom(...texts), ""),
  targetId: maybe(fc.constantFrom(...texts), ""),
  targetType: maybe(fc.constantFrom(...texts), ""),
  category: maybe(fc.constantFrom(...categories), ""),
  source: maybe(fc.constantFrom(...texts), ""),
  outcomeStatus: maybe(fc.constantFrom(1, 2), 0),
  parentId: maybe(fc.constantFrom(...parents), ""),
  includeChildren: fc.boolean(),
  activeOnly: fc.boolean(),
  eventName: maybe(fc.constantFrom("job.finished", "a", "nothing"), ""),
  includeServiceRecords: fc.boolean(),
});

test("the generated filters set every filter of the contract's EventFilter", () => {
  // Each field of the EventFilter message, set on its own, reaches one store filter key, which filterArb generates.
  const generated = new Set(fc.sample(filterArb, 20).flatMap((f) => Object.keys(f)));
  const base = readFilter(create(EventFilterSchema), "", []) as unknown as Record<string, unknown>;
  for (const field of EventFilterSchema.fields) {
    const value =
      field.fieldKind === "message"
        ? { seconds: 1_700_000_000n }
        : field.fieldKind === "list"
          ? ["a.b"]
          : field.fieldKind === "enum"
            ? 1
            : field.fieldKind === "scalar" && field.scalar === ScalarType.BOOL
              ? true
              : "x";
    const violations: FieldViolation[] = [];
    const read = readFilter(create(EventFilterSchema, { [field.localName]: value }), "", violations);
    expect(violations, field.name).toEqual([]);
    const record = read as unknown as Record<string, unknown>;
    const changed = Object.keys(record).filter((k) => JSON.stringify(record[k]) !== JSON.stringify(base[k]));
    expect(changed, field.name).toHaveLength(1);
    expect(generated, `${field.name} (${changed[0]})`).toContain(changed[0]);
  }
});

test("the in-memory filter (Tail) selects exactly the rows the SQL filter (List, replay) selects", async () => {
  await fc.assert(
    fc.asyncProperty(filterArb, fc.constantFrom(...instants), async (filter, now) => {
      const listed = await store.list({ ...filter, tenant: "props", limit: 1000, newestFirst: false, nowMicros: now });
      const compiled = compileFilter(filter);
      const replayed = await store.range({
        tenant: "props",
        afterSequence: 0,
        filter: compiled,
        nowMicros: now,
        limit: 1000,
      });
      const matched = rows.filter((row) => filterMatches(compiled, row, now)).map((r) => r.sequence);
      expect(listed.map((r) => r.sequence).sort((a, b) => a - b)).toEqual(matched);
      expect(replayed.map((r) => r.sequence)).toEqual(matched);
    }),
    { numRuns: 400 },
  );
});

test("the sample is varied enough for the comparison to mean something", () => {
  const counts = [
    compileFilter({ ...everyEvent, actions: ["a%*"] }),
    compileFilter({ ...everyEvent, activeOnly: true }),
  ].map((f) => rows.filter((row) => filterMatches(f, row, NOW)).length);
  for (const n of counts) {
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThan(rows.length);
  }
});
