import type postgres from "postgres";
import { beforeAll, expect, test } from "vitest";
import { type CountQuery, EventStore, type ListQuery } from "../../src/store/event-store.js";
import { connectedTestDatabase } from "../support/database.js";
import { everyEvent } from "../support/events.js";

/**
 * The plan PostgreSQL picks for each List filter shape, over the SQL EventStore.list really sends. Each shape must use
 * the index docs/storage.md says serves it; run with `--reporter=verbose` to see the plans printed there.
 */

const connected = connectedTestDatabase({ poolSize: 2, statementTimeoutMs: 60_000 });
let store: EventStore;

const ROWS = 50_000;

beforeAll(async () => {
  store = new EventStore(connected.database.db);
  // A year of one big tenant's events, plus a smaller tenant, with realistic spreads: 1,000 actors, 50 common actions
  // in 10 services and 3 rare admin ones, 5,000 targets, one event in ten a child. Inserted directly, not through the
  // API: only the plans matter here.
  await connected.database.sql`
    insert into events (tenant, sequence, id, occurred_at, received_at, action, category, source, actor_id,
      actor_name, target_id, target_type, outcome_status, parent_id, content_hash)
    select t.tenant, n, 'e' || n, at, at,
      case when n % 500 = 7 then 'admin.' || (array['grant', 'revoke', 'reset'])[n % 3 + 1]
        else 'svc' || (n % 10) || '.verb' || (n % 50 / 10) end,
      'Category' || (n % 17), 'source' || (n % 7),
      'actor' || (n * 7 % 1000), 'Actor Name ' || (n * 7 % 1000), 'target' || (n * 13 % 5000), 'type' || (n % 10),
      n % 3, case when n % 10 = 0 then 'e' || (n - 1) else '' end, '\\x00'::bytea
    from (values ('acme', ${ROWS}::int), ('globex', ${ROWS / 5}::int)) as t(tenant, rows),
      generate_series(1, t.rows) as n,
      lateral (select timestamptz '2024-01-01' + n * (interval '1 year' / t.rows) as at) as time
  `;
  await connected.database.sql`analyze events`;
}, 120_000);

const base: ListQuery = {
  tenant: "acme",
  limit: 51,
  newestFirst: true,
  ...everyEvent,
  includeChildren: false,
  nowMicros: 0n,
};

/** [shape, query, the index whose scan must appear in the plan]. */
const shapes: [string, Partial<ListQuery>, string][] = [
  ["newest first, no filter", {}, "events_tenant_time_idx"],
  ["oldest first, no filter", { newestFirst: false }, "events_tenant_time_idx"],
  [
    "next page (keyset cursor)",
    { after: { occurredAt: "2024-07-01T00:00:00Z", sequence: 50_000 } },
    "events_tenant_time_idx",
  ],
  ["time window", { startTime: "2024-03-01T00:00:00Z", endTime: "2024-03-02T00:00:00Z" }, "events_tenant_time_idx"],
  ["include_children", { includeChildren: true }, "events_tenant_time_idx"],
  ["actor_id", { actorId: "actor42" }, "events_tenant_actor_time_idx"],
  [
    "actor_id in a time window, next page",
    {
      actorId: "actor42",
      startTime: "2024-02-01T00:00:00Z",
      endTime: "2024-09-01T00:00:00Z",
      after: { occurredAt: "2024-06-01T00:00:00Z", sequence: 41_000 },
    },
    "events_tenant_actor_time_idx",
  ],
  ["actor_name", { actorName: "Actor Name 42" }, "events_tenant_actor_name_time_idx"],
  ["one exact action", { actions: ["admin.grant"] }, "events_tenant_action_idx"],
  ["action prefix", { actions: ["admin.*"] }, "events_tenant_action_idx"],
  ["an exact action and a prefix", { actions: ["admin.grant", "admin.re*"] }, "events_tenant_action_idx"],
  // One event in ten matches: walking the time index finds a page sooner than reading every match.
  ["a common action prefix", { actions: ["svc3.*"] }, "events_tenant_time_idx"],
  ["target_id", { targetId: "target77" }, "events_tenant_target_idx"],
  ["target_id and target_type", { targetId: "target77", targetType: "type9" }, "events_tenant_target_idx"],
  ["parent_id", { parentId: "e99" }, "events_tenant_parent_idx"],
  // Few distinct values and no index of their own: the time index walks the tenant's events in order and the filter
  // drops the others.
  ["category", { category: "Category3" }, "events_tenant_time_idx"],
  ["source", { source: "source2" }, "events_tenant_time_idx"],
  ["outcome", { outcomeStatus: 2 }, "events_tenant_time_idx"],
  ["target_type alone", { targetType: "type3" }, "events_tenant_time_idx"],
];

test.each(shapes)("%s uses %s", async (shape, query, index) => {
  const { sql: text, params } = store.listQuery({ ...base, ...query }).toSQL();
  const rows = await connected.database.sql.unsafe(
    `explain (analyze, buffers off, costs off, timing off, summary off) ${text}`,
    params as postgres.ParameterOrJSON<never>[],
    // As drizzle runs it: an unnamed statement, planned with the values it is given.
    { prepare: false },
  );
  const plan = rows.map((r) => r["QUERY PLAN"] as string).join("\n");
  console.log(`-- ${shape}\n${plan}\n`);
  expect(plan).toMatch(new RegExp(`(Index Scan( Backward)? using|Bitmap Index Scan on) ${index} `));
  expect(plan).not.toContain("Seq Scan");
});

/** CountEvents: List's WHERE clause over a bounded range, grouped; the same indexes must serve it. */
const countShapes: [string, Partial<CountQuery>, string][] = [
  ["a day", { startTime: "2024-03-01T00:00:00Z", endTime: "2024-03-02T00:00:00Z" }, "events_tenant_time_idx"],
  [
    "an actor over a month",
    { actorId: "actor42", startTime: "2024-02-01T00:00:00Z", endTime: "2024-03-01T00:00:00Z" },
    "events_tenant_actor_time_idx",
  ],
  [
    "an action prefix over a year",
    { actions: ["admin.*"], startTime: "2024-01-01T00:00:00Z", endTime: "2025-01-01T00:00:00Z" },
    "events_tenant_action_idx",
  ],
];

test.each(countShapes)("CountEvents over %s uses %s", async (shape, query, index) => {
  const q: CountQuery = { tenant: "acme", ...everyEvent, widthSeconds: 3600n, nowMicros: 0n, ...query };
  const { sql: text, params } = store.countQuery(q).toSQL();
  const rows = await connected.database.sql.unsafe(
    `explain (analyze, buffers off, costs off, timing off, summary off) ${text}`,
    params as postgres.ParameterOrJSON<never>[],
    { prepare: false },
  );
  const plan = rows.map((r) => r["QUERY PLAN"] as string).join("\n");
  console.log(`-- CountEvents, ${shape}\n${plan}\n`);
  expect(plan).toMatch(new RegExp(`(Index( Only)? Scan( Backward)? using|Bitmap Index Scan on) ${index} `));
  expect(plan).not.toContain("Seq Scan");
});
