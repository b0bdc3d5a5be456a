import postgres from "postgres";
import { afterAll, beforeAll, expect, test } from "vitest";
import { auditApi, type EventJson } from "../support/audit-api.js";
import { appFixture } from "../support/fixture.js";

let sql: postgres.Sql;
let stored: EventJson[];
const given = appFixture({ tenants: ["acme"] });
beforeAll(async () => {
  const api = auditApi(given.app, "grpc-js", given.acme.writer);
  ({ events: stored } = await api.batchCreate({
    events: [
      { id: "keep-1", action: "payment.refund", actor: { id: "u1" }, attributes: { amount: 10 } },
      { id: "keep-2", action: "payment.refund", actor: { id: "u2" }, attributes: { amount: 20 } },
    ],
  }));
  api.close();
  // The service's own database and role: whatever the application may do, it may not rewrite the log.
  sql = postgres(given.app.databaseUrl, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
});

test.each([
  ["UPDATE", () => sql`update events set action = 'payment.cancel' where id = 'keep-1'`],
  ["UPDATE", () => sql`update events set attributes = null`],
  ["DELETE", () => sql`delete from events where id = 'keep-2'`],
  ["DELETE", () => sql`delete from events`],
  ["TRUNCATE", () => sql`truncate events`],
  ["TRUNCATE", () => sql`truncate table events restart identity cascade`],
])("the database refuses %s on events", async (operation, statement) => {
  const error = await statement().then(
    () => undefined,
    (e: postgres.PostgresError) => e,
  );
  expect(error?.code).toBe("42501");
  expect(error?.message).toBe(`audit events are append-only: ${operation} refused`);
});

test("the events are untouched and new ones can still be appended", async () => {
  // The clients' events: the service's own records (provisioning, in the system tenant) are not this test's.
  const rows = await sql`
    select id, action, attributes from events where category not like 'audit-trail.%' order by sequence`;
  expect(rows.map((r) => ({ ...r }))).toEqual([
    { id: "keep-1", action: "payment.refund", attributes: { amount: 10 } },
    { id: "keep-2", action: "payment.refund", attributes: { amount: 20 } },
  ]);
  const api = auditApi(given.app, "connect", given.acme.readerWriter);
  await api.create({ event: { id: "keep-3", action: "payment.refund" } });
  const { events } = await api.list({ order: "ORDER_OLDEST_FIRST" });
  api.close();
  expect(events.slice(0, 2)).toEqual(stored);
  expect(events.map((e) => e.id)).toEqual(["keep-1", "keep-2", "keep-3"]);
});
