import { Code, ConnectError } from "@connectrpc/connect";
import postgres from "postgres";
import { describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";
import { legacyCalls } from "../support/legacy-calls.js";

type Labels = Record<string, string>;

/** One scrape, parsed: every sample's value by metric name and labels. */
async function scrape(url: string): Promise<{ value(name: string, labels?: Labels): number; text: string }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples: { name: string; labels: Labels; value: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Labels = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g))
      labels[k as string] = v as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return {
    text,
    /** The sum over samples whose labels include `labels` (0 when none). */
    value(name, wanted = {}) {
      return samples
        .filter((s) => s.name === name && Object.entries(wanted).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0);
    },
  };
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("condition never held");
}

const create = { service: "audit.v1.AuditService", method: "Create" };

describe("on the main port", () => {
  // One flush at a time, so a held tenant lock makes the queue grow predictably.
  const given = appFixture({ env: { GROUP_COMMIT_FLUSHES: "1" }, tenants: ["acme"] });

  test("GET /metrics needs no credential and has process metrics and the pool size", async () => {
    const m = await scrape(`${given.app.url}/metrics`);
    expect(m.value("process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(m.value("nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
    expect(m.value("audit_db_pool_size")).toBe(10);
    // No tenant label unless an operator asks for one.
    expect(m.text).not.toMatch(/tenant="/);
  });

  test("calls are counted and timed by service, method, protocol or route, and code", async () => {
    const before = await scrape(given.app.app.metricsUrl);
    const event = { action: "metrics.count" };
    for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
      await clientFor(AuditService, given.app, protocol, given.acme.writer).create({ event });
    }
    const rest = await fetch(`${given.app.url}/v1/tenants/acme/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${given.acme.writer}`, "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    expect(rest.status).toBe(200);
    const axonize = await fetch(`${given.app.url}/odata/Audits`, {
      method: "POST",
      headers: { authorization: given.acme.writer, "content-type": "application/json" },
      body: JSON.stringify({
        entityName: "Boiler 3",
        entityId: "dev-3",
        action: "Put",
        category: "Devices",
        result: "OK",
      }),
    });
    expect(axonize.status).toBeLessThan(300);
    await expect(clientFor(AuditService, given.app, "grpc").create({ event })).rejects.toMatchObject({
      code: Code.Unauthenticated,
    });

    const after = await scrape(given.app.app.metricsUrl);
    const moved = (name: string, labels: Labels) => after.value(name, labels) - before.value(name, labels);
    for (const protocol of ["connect", "grpc-web", "grpc", "rest", "axonize"]) {
      expect(moved("audit_rpc_calls_total", { ...create, protocol, code: "OK" }), protocol).toBe(1);
      // Timed whatever the outcome: the refused gRPC call too.
      expect(moved("audit_rpc_duration_seconds_count", { ...create, protocol }), protocol).toBe(
        protocol === "grpc" ? 2 : 1,
      );
    }
    // The Axonize route makes one call: it asks no separate RPC who the caller is.
    expect(moved("audit_rpc_calls_total", { method: "GetCaller", protocol: "axonize", code: "OK" })).toBe(0);
    expect(moved("audit_rpc_calls_total", { ...create, protocol: "grpc", code: "Unauthenticated" })).toBe(1);
    expect(moved("audit_events_stored_total", {})).toBe(5);
    expect(moved("audit_group_commit_flush_events_count", {})).toBeGreaterThanOrEqual(1);
    expect(moved("audit_group_commit_flush_events_sum", {})).toBe(5);
    expect(moved("audit_db_operation_duration_seconds_count", { operation: "append" })).toBeGreaterThanOrEqual(1);
  });

  test("each legacy API's calls are counted under its name, Frontier's under its service; List times its query", async () => {
    const calls = await legacyCalls(given.app, given.acme);
    for (const { api, send } of calls) {
      const before = await scrape(given.app.app.metricsUrl);
      const res = await send();
      expect(res.status, `${api}: ${await res.text()}`).toBeLessThan(300);
      const after = await scrape(given.app.app.metricsUrl);
      const ok = { protocol: api, code: "OK" };
      expect(after.value("audit_rpc_calls_total", ok) - before.value("audit_rpc_calls_total", ok), api).toBeGreaterThan(
        0,
      );
    }
    const before = await scrape(given.app.app.metricsUrl);
    const frontier = await fetch(`${given.app.url}/v1beta1/organizations/acme/auditlogs`, {
      method: "POST",
      headers: { authorization: `Bearer ${given.acme.writer}`, "content-type": "application/json" },
      body: JSON.stringify({ logs: [{ source: "frontier", action: "metrics.frontier" }] }),
    });
    expect(frontier.status).toBe(200);
    await clientFor(AuditService, given.app, "grpc", given.acme.reader).list({});
    const after = await scrape(given.app.app.metricsUrl);
    const moved = (name: string, labels: Labels) => after.value(name, labels) - before.value(name, labels);
    const service = "raystack.frontier.v1beta1.FrontierService";
    expect(moved("audit_rpc_calls_total", { service, protocol: "rest", code: "OK" })).toBe(1);
    expect(moved("audit_db_operation_duration_seconds_count", { operation: "list" })).toBeGreaterThanOrEqual(1);
  });

  test("a replayed event is not counted as stored again; a batch counts each event", async () => {
    const client = clientFor(AuditService, given.app, "connect", given.acme.writer);
    await client.create({ event: { id: "replayed-1", action: "metrics.replay" } });
    const before = await scrape(given.app.app.metricsUrl);
    await client.create({ event: { id: "replayed-1", action: "metrics.replay" } });
    await client.batchCreate({ events: [{ action: "b.1" }, { action: "b.2" }, { action: "b.3" }] });
    const after = await scrape(given.app.app.metricsUrl);
    expect(after.value("audit_events_stored_total") - before.value("audit_events_stored_total")).toBe(3);
  });

  test("the group commit queue and the store's operations in flight show a held lock", async () => {
    const client = clientFor(AuditService, given.app, "connect", given.acme.writer);
    const sql = postgres(given.app.databaseUrl, { max: 1, onnotice: () => {} });
    const holder = await sql.reserve();
    try {
      await holder`begin`;
      await holder`select * from tenant_sequences where tenant = 'acme' for update`;
      const calls = Array.from({ length: 4 }, (_, i) => client.create({ event: { action: `held.${i}` } }));
      // The first flush waits on the lock; the other three wait for it in the queue.
      await until(async () => (await scrape(given.app.app.metricsUrl)).value("audit_group_commit_queued_events") === 3);
      const m = await scrape(given.app.app.metricsUrl);
      expect(m.value("audit_db_operations_in_flight", { operation: "append" })).toBe(1);
      expect(m.value("audit_db_operations_in_flight", { operation: "group_commit" })).toBe(4);
      expect(m.value("audit_rpc_active_calls", { ...create, protocol: "connect" })).toBe(4);
      await holder`rollback`;
      await Promise.all(calls);
    } finally {
      holder.release();
      await sql.end();
    }
    const m = await scrape(given.app.app.metricsUrl);
    expect(m.value("audit_group_commit_queued_events")).toBe(0);
    expect(m.value("audit_db_operations_in_flight")).toBe(0);
    expect(m.value("audit_rpc_active_calls", { ...create, protocol: "connect" })).toBe(0);
  });

  test("an open Tail stream is counted until the client goes away; its replay times its reads", async () => {
    const reader = clientFor(AuditService, given.app, "grpc", given.acme.reader);
    const abort = new AbortController();
    const before = await scrape(given.app.app.metricsUrl);
    const stream = (async () => {
      try {
        for await (const _ of reader.tail({ afterSequence: 0n }, { signal: abort.signal })) {
        }
      } catch (error) {
        expect(ConnectError.from(error).code).toBe(Code.Canceled);
      }
    })();
    await until(async () => (await scrape(given.app.app.metricsUrl)).value("audit_tail_streams") === 1);
    const open = await scrape(given.app.app.metricsUrl);
    expect(open.value("audit_rpc_active_calls", { method: "Tail", protocol: "grpc" })).toBe(1);
    const range = { operation: "range" };
    await until(
      async () =>
        (await scrape(given.app.app.metricsUrl)).value("audit_db_operation_duration_seconds_count", range) >
        before.value("audit_db_operation_duration_seconds_count", range),
    );
    abort.abort();
    await stream;
    await until(async () => (await scrape(given.app.app.metricsUrl)).value("audit_tail_streams") === 0);
    await until(
      async () =>
        (await scrape(given.app.app.metricsUrl)).value("audit_rpc_active_calls", {
          method: "Tail",
          protocol: "grpc",
        }) === 0,
    );
    expect(
      (await scrape(given.app.app.metricsUrl)).value("audit_rpc_calls_total", { method: "Tail", code: "Canceled" }),
    ).toBe(1);
  });
});

test("METRICS_PORT moves /metrics to a port of its own; METRICS_TENANT_LABELS labels events stored by tenant", async () => {
  const app = await startTestApp({ env: { METRICS_PORT: "0", METRICS_TENANT_LABELS: "true" } });
  try {
    expect(new URL(app.app.metricsUrl).port).not.toBe(String(app.port));
    expect((await fetch(`${app.url}/metrics`)).status).toBe(404);
    const tokens = await provisionTenant(app, "labelled");
    // The service's records of the provisioning are events stored in the tenant too.
    const provisioned = (await scrape(app.app.metricsUrl)).value("audit_events_stored_total", { tenant: "labelled" });
    expect(provisioned).toBe(Number(tokens.firstSequence) - 1);
    await clientFor(AuditService, app, "connect", tokens.writer).create({ event: { action: "x" } });
    const m = await scrape(app.app.metricsUrl);
    expect(m.value("audit_events_stored_total", { tenant: "labelled" })).toBe(provisioned + 1);
    expect((await fetch(app.app.metricsUrl.replace("/metrics", "/other"))).status).toBe(404);
  } finally {
    await app.close();
  }
});
