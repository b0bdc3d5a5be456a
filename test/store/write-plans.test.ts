import { beforeAll, expect, test } from "vitest";
import { systemClock } from "../../src/clock.js";
import { EventStore } from "../../src/store/event-store.js";
import { eventLeafData } from "../../src/vlog/leaf.js";
import { TreeLog } from "../../src/vlog/tree-log.js";
import { connectedTestDatabase } from "../support/database.js";
import { everyEvent, newEvent } from "../support/events.js";

/**
 * The write transaction plans its statements once per connection (generic plans), while List, on the same
 * connections, keeps planning each run for its values (docs/storage.md). One connection, so every statement below
 * runs on the session whose prepared statements are counted.
 */

const connected = connectedTestDatabase({ poolSize: 1 });
let store: EventStore;

beforeAll(async () => {
  store = new EventStore(connected.database.db, undefined, new TreeLog(connected.database.sql, eventLeafData));
});

interface Prepared {
  statement: string;
  generic: number;
  custom: number;
}

async function prepared(): Promise<Prepared[]> {
  return connected.database.sql<Prepared[]>`
    select statement, generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements`;
}

test("appends run on generic plans, List on custom plans, and the setting does not outlive the transaction", async () => {
  for (let i = 0; i < 8; i++) {
    await store.appendEach(
      [
        { tenant: "plans-a", event: newEvent({ action: `a.${i}` }) },
        { tenant: "plans-b", event: newEvent({ id: `b-${i}`, action: `b.${i}` }) },
      ],
      systemClock,
    );
    await store.append("plans-a", [newEvent({ action: `batch.${i}` })], systemClock);
    await store.list({ ...everyEvent, tenant: "plans-a", limit: 10, newestFirst: true, nowMicros: 0n });
  }
  const statements = await prepared();
  const append = statements.filter((s) => s.statement.includes("jsonb_to_recordset"));
  const lock = statements.filter((s) => s.statement.includes("insert into tenant_sequences"));
  const advance = statements.filter((s) => s.statement.includes("audit_log_advance"));
  const list = statements.filter((s) => s.statement.includes('from "events"') && s.statement.includes("limit"));
  for (const group of [append, lock, advance]) {
    expect(group.length).toBeGreaterThan(0);
    for (const s of group) expect({ generic: s.generic > 0, custom: s.custom }).toEqual({ generic: true, custom: 0 });
  }
  expect(list.length).toBeGreaterThan(0);
  for (const s of list) expect({ generic: s.generic, custom: s.custom }).toEqual({ generic: 0, custom: 8 });
  const [setting] = await connected.database.sql<{ mode: string }[]>`select current_setting('plan_cache_mode') as mode`;
  expect(setting?.mode).toBe("force_custom_plan");
});
