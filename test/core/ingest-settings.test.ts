import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterEach, describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, protocols, provisionTenant, type TenantTokens } from "../support/clients.js";
import { expectError } from "../support/errors.js";
import { holdTenant, metric, until } from "../support/held-writes.js";

// The README's settings for writes, each seen through real calls: INGEST_QUEUE_LIMIT ("beyond it,
// RESOURCE_EXHAUSTED (429 on REST and legacy routes) with reason INGEST_QUEUE_FULL"), GROUP_COMMIT_FLUSHES ("group
// commits in flight at once"), DATABASE_POOL_SIZE ("PostgreSQL connections per process") and REQUEST_TIMEOUT_MS
// ("the database statement timeout"). Writes are held by a test transaction that locks the tenant's sequence row,
// as a slow commit would; every wait is on an observed state (metrics, pg_stat_activity), never on a sleep.

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A JSON error body as REST and the legacy routes write it (google.rpc.Status, PlanoAuth's, OData's). */
interface ErrorBody {
  details: { reason?: string; domain?: string }[];
  status: string;
  error: { code: string };
}
const errorBody = async (res: Response) => (await res.json()) as ErrorBody;

/** The service's own connections, by state: those waiting on a lock, and all of them (LISTEN's excluded). */
async function backends(sql: postgres.Sql): Promise<{ waiting: number; total: number }> {
  const [row] = await sql<{ waiting: number; total: number }[]>`
    select count(*) filter (where wait_event_type = 'Lock')::int as waiting, count(*)::int as total
    from pg_stat_activity
    where datname = current_database() and application_name = 'audit-trail' and query not ilike 'listen%'`;
  return row ?? { waiting: 0, total: 0 };
}

async function appWithTenant(env: Record<string, string>): Promise<{ app: TestApp; acme: TenantTokens }> {
  const started = await startTestApp({ env });
  app = started;
  const acme = await provisionTenant(started, "acme");
  // The tenant's sequence row exists once it has an event.
  await clientFor(AuditService, started, "connect", acme.writer).create({ event: { action: "ingest.first" } });
  return { app: started, acme };
}

describe("INGEST_QUEUE_LIMIT and GROUP_COMMIT_FLUSHES", () => {
  test.each([1, 3])(
    "with GROUP_COMMIT_FLUSHES=%i and INGEST_QUEUE_LIMIT=2: that many flushes, then 2 waiting, then INGEST_QUEUE_FULL on every protocol and route",
    async (flushes) => {
      const { app, acme } = await appWithTenant({ GROUP_COMMIT_FLUSHES: String(flushes), INGEST_QUEUE_LIMIT: "2" });
      const writer = clientFor(AuditService, app, "connect", acme.writer);
      // A tenant is in one flush at a time, so each flush in flight is another tenant's.
      const tenants = [acme];
      for (let t = 1; t < flushes; t++) {
        const tokens = await provisionTenant(app, `ingest-${t}`);
        await clientFor(AuditService, app, "connect", tokens.writer).create({ event: { action: "ingest.first" } });
        tenants.push(tokens);
      }
      const held = await Promise.all(tenants.map((t) => holdTenant(app.databaseUrl, t.tenant)));
      // Event i goes to tenant i while there are tenants left, then to acme, whose flush is in flight.
      const tenantOf = (i: number) => tenants[i] ?? acme;
      const accepted: Promise<unknown>[] = [];
      try {
        // One at a time, each seen in a flush or in the queue before the next: a flush starts for a new event
        // while fewer than GROUP_COMMIT_FLUSHES are in flight and its tenant is in none, and takes what is queued.
        for (let i = 0; i < flushes + 2; i++) {
          let settled = false;
          const call = clientFor(AuditService, app, "connect", tenantOf(i).writer).create({
            event: { id: `held-${i}`, action: "ingest.held" },
          });
          accepted.push(call);
          call.then(
            () => (settled = true),
            () => (settled = true),
          );
          await until(
            `event ${i} is in a flush or queued`,
            async () =>
              settled ||
              (await metric(app.app.metricsUrl, "audit_db_operations_in_flight", { operation: "append" })) +
                (await metric(app.app.metricsUrl, "audit_group_commit_queued_events")) ===
                i + 1,
          );
          // Answered while the lock is held: refused (a queue or flush limit lower than configured).
          expect(settled, `event ${i} was answered before its commit could happen`).toBe(false);
        }
        expect(await metric(app.app.metricsUrl, "audit_db_operations_in_flight", { operation: "append" })).toBe(
          flushes,
        );
        expect(await metric(app.app.metricsUrl, "audit_group_commit_queued_events")).toBe(2);

        // The queue is full: every single-event write is refused at once, in its caller's protocol.
        for (const protocol of protocols) {
          const error = await expectError(
            clientFor(AuditService, app, protocol, acme.writer).create({
              event: { id: `refused-${protocol}`, action: "ingest.refused" },
            }),
            { code: Code.ResourceExhausted, reason: "INGEST_QUEUE_FULL" },
          );
          expect(error.rawMessage).toContain("retry with backoff");
        }
        const rest = await fetch(`${app.url}/v1/tenants/acme/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${acme.writer}`, "content-type": "application/json" },
          body: JSON.stringify({ id: "refused-rest", action: "ingest.refused" }),
        });
        expect(rest.status).toBe(429);
        expect((await errorBody(rest)).details[0]).toMatchObject({ reason: "INGEST_QUEUE_FULL", domain: "audit.v1" });

        // docs/legacy.md: PlanoAuth answers saturation `429 application-crash`, Axonize `429` with the reason.
        const plano = await fetch(`${app.url}/api/v1/audit_events_fmp/create`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            unique_id: "refused-plano",
            script_name: "Nightly Export",
            host_name: "fm-server-01",
            file_name: "Invoices.fmp12",
            start_time: "2024-05-01 10:00:00",
            token: acme.writer,
          }),
        });
        expect([plano.status, (await errorBody(plano)).status]).toEqual([429, "application-crash"]);
        const axonize = await fetch(`${app.url}/odata/Audits`, {
          method: "POST",
          headers: { authorization: acme.writer, "content-type": "application/json" },
          body: JSON.stringify({
            id: "refused-axonize",
            entityName: "device123",
            entityId: "1",
            action: "CreateDevice",
            category: "Devices",
          }),
        });
        expect([axonize.status, (await errorBody(axonize)).error.code]).toEqual([429, "INGEST_QUEUE_FULL"]);
      } finally {
        await Promise.all(held.map((h) => h.release()));
      }
      // The held writes commit once the locks go, each in its tenant, and nothing refused was stored.
      const stored = await Promise.all(accepted);
      expect(stored).toHaveLength(flushes + 2);
      for (const tokens of tenants) {
        const { events } = await clientFor(AuditService, app, "grpc", tokens.reader).list({ pageSize: 100 });
        const ids = events.map((e) => e.id);
        expect(ids.filter((id) => id.startsWith("held-")).sort()).toEqual(
          Array.from({ length: flushes + 2 }, (_, i) => `held-${i}`).filter((_, i) => tenantOf(i) === tokens),
        );
        expect(ids.filter((id) => id.startsWith("refused-"))).toEqual([]);
      }
      // With room in the queue again, the same write is accepted: the refusals were the queue's.
      await writer.create({ event: { id: "refused-connect", action: "ingest.refused" } });
    },
  );
});

describe("DATABASE_POOL_SIZE", () => {
  test("the service holds at most DATABASE_POOL_SIZE connections, and uses all of them under load", async () => {
    const { app, acme } = await appWithTenant({ DATABASE_POOL_SIZE: "3" });
    const writer = clientFor(AuditService, app, "connect-binary", acme.writer);
    const held = await holdTenant(app.databaseUrl, "acme");
    let calls: Promise<unknown>[] = [];
    try {
      // Six transactions at once (BatchCreate writes in its own transaction, outside the group commit).
      calls = Array.from({ length: 6 }, (_, i) =>
        writer.batchCreate({ events: [{ id: `pool-${i}`, action: "pool.held" }] }),
      );
      await until(
        `every call asked the pool for a connection`,
        async () => (await metric(app.app.metricsUrl, "audit_db_operations_in_flight", { operation: "append" })) === 6,
      );
      await until("three connections wait on the held lock", async () => (await backends(held.sql)).waiting >= 3);
      expect(await backends(held.sql)).toEqual({ waiting: 3, total: 3 });
    } finally {
      await held.release();
    }
    await Promise.all(calls);
    // Served by those three: the pool never opened a fourth.
    const sql = postgres(app.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      expect((await backends(sql)).total).toBe(3);
    } finally {
      await sql.end();
    }
  });
});

describe("REQUEST_TIMEOUT_MS", () => {
  test("is the statement timeout: a write stuck behind a lock ends DEADLINE_EXCEEDED after it, 504 on REST", async () => {
    const { app, acme } = await appWithTenant({ REQUEST_TIMEOUT_MS: "2000" });
    const held = await holdTenant(app.databaseUrl, "acme");
    try {
      const started = performance.now();
      await expectError(
        clientFor(AuditService, app, "grpc", acme.writer).batchCreate({ events: [{ action: "timeout.held" }] }),
        { code: Code.DeadlineExceeded, reason: "DEADLINE_EXCEEDED" },
      );
      const tookMs = performance.now() - started;
      // Not before the timeout; a busy machine may add to it, but not another timeout's worth many times over.
      expect(tookMs).toBeGreaterThanOrEqual(2000);
      expect(tookMs).toBeLessThan(15_000);
      const rest = await fetch(`${app.url}/v1/tenants/acme/events:batchCreate`, {
        method: "POST",
        headers: { authorization: `Bearer ${acme.writer}`, "content-type": "application/json" },
        body: JSON.stringify({ events: [{ action: "timeout.held" }] }),
      });
      expect(rest.status).toBe(504);
      expect((await errorBody(rest)).details[0]).toMatchObject({ reason: "DEADLINE_EXCEEDED" });
    } finally {
      await held.release();
    }
    // The same call, with nothing holding the lock, succeeds: the timeout was the lock's doing.
    const { events } = await clientFor(AuditService, app, "grpc", acme.writer).batchCreate({
      events: [{ action: "timeout.free" }],
    });
    expect(events).toHaveLength(1);
  });
});
