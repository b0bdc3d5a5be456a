import http2 from "node:http2";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp } from "../support/app.js";
import { provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectAll } from "../support/expect-all.js";
import { h2Request } from "../support/h2.js";
import { until } from "../support/held-writes.js";
import { type Attempt, newEvents, runLoad, send, tally, type Writer } from "./load.js";
import { killAllServiceProcesses, startServiceProcess } from "./service-process.js";
import { checkStore, describeSequences } from "./verify-store.js";

const GRACE_MS = 10_000;
const BIG = 500;

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await killAllServiceProcesses();
  await database?.drop();
});

/**
 * How a call was turned away. A call on a new connection meets a closed port (UNAVAILABLE, ECONNREFUSED), or, if
 * the kernel had queued its connection before the port closed, a reset (connect-node: ABORTED, ECONNRESET); one
 * that raced the server's GOAWAY on an open HTTP/2 connection is reset with REFUSED_STREAM, HTTP/2's "not processed,
 * safe to retry" (gRPC's UNAVAILABLE), which connect-node reports as INTERNAL; one answered by the stopping server
 * gets UNAVAILABLE. Anything else is not a refusal. That none of them ran is checked in the database.
 */
function refusal(a: Attempt): string {
  if (a.message?.includes("REFUSED_STREAM")) return "REFUSED_STREAM";
  if (a.code === Code.Aborted && a.message?.includes("ECONNRESET")) return "ECONNRESET";
  if (a.code === Code.Unavailable) return a.message?.includes("ECONNREFUSED") ? "ECONNREFUSED" : "UNAVAILABLE";
  return `other: ${Code[a.code ?? Code.Unknown]} ${a.message}`;
}

describe("SIGTERM under load", () => {
  it("finishes the calls in flight, refuses new ones, exits 0, and loses nothing acknowledged", async () => {
    const service = await startServiceProcess({
      databaseUrl: database.url,
      env: { SHUTDOWN_GRACE_MS: String(GRACE_MS) },
    });
    const writers: Writer[] = await Promise.all(
      ["stop-a", "stop-b"].map(async (tenant) => ({ tenant, token: (await provisionTenant(service, tenant)).writer })),
    );
    const stop = new AbortController();
    const loadAttempts: Attempt[] = [];
    const load = runLoad({
      url: service.url,
      writers,
      workers: 8,
      maxBatch: 40,
      prefix: "stop",
      signal: stop.signal,
      attempts: loadAttempts,
    });
    // Under way once the load's calls are being answered.
    await until("the load runs", async () => loadAttempts.filter((a) => a.outcome === "acked").length >= 16);

    // Calls that take a while (large batches), under way when the signal arrives.
    const big: Attempt[] = writers.map((w) => ({
      kind: "batch",
      tenant: w.tenant,
      events: newEvents("stop-big", BIG),
      outcome: "pending",
    }));
    const bigCalls = big.map((a, i) => send(service.url, (writers[i] as Writer).token, a));
    // Signalled once the big calls are on the wire and none has answered; the assertions below check they were
    // still in flight when the signal went, so the test cannot pass with nothing to drain.
    await sleep(20);
    const signalledAt = performance.now();
    service.signal("SIGTERM");

    // New calls once the service is stopping (it logged so): refused, and quickly.
    while (!service.logs.some((l) => l.includes('"shutting down"'))) await sleep(10);
    const late: Attempt[] = writers.map((w) => ({
      kind: "create",
      tenant: w.tenant,
      events: newEvents("stop-late", 1),
      outcome: "pending",
    }));
    await Promise.all(late.map((a, i) => send(service.url, (writers[i] as Writer).token, a, 5000)));

    const status = await Promise.race([service.exited, sleep(GRACE_MS + 10_000).then(() => "still running")]);
    const exitedAfter = performance.now() - signalledAt;
    stop.abort();
    const attempts = [...(await load), ...big, ...late];
    await Promise.all(bigCalls);

    const inFlight = attempts.filter((a) => (a.startedAt ?? 0) < signalledAt && (a.endedAt ?? 0) > signalledAt);
    const finished = inFlight.filter((a) => a.outcome === "acked");
    const failed = attempts.filter((a) => a.outcome === "failed");
    const refusals = new Map<string, number>();
    for (const a of failed) refusals.set(refusal(a), (refusals.get(refusal(a)) ?? 0) + 1);
    const counts = tally(attempts);
    const check = await checkStore(database.url, attempts);
    console.log(
      `shutdown: SIGTERM with ${inFlight.length} calls in flight (${big.length} of them ${BIG}-event batches): ` +
        `${finished.length} finished OK (big: ${big.map((a) => a.outcome).join(", ")}), the last ` +
        `${Math.round(Math.max(...finished.map((a) => a.endedAt ?? 0)) - signalledAt)} ms after the signal; ` +
        `${failed.length} refused (${[...refusals].map(([how, n]) => `${n} ${how}`).join(", ")}), ` +
        `late calls ${late.map((a) => `${refusal(a)} in ${Math.round((a.endedAt ?? 0) - (a.startedAt ?? 0))} ms`).join(", ")}; ` +
        `exit ${JSON.stringify(status)} after ${Math.round(exitedAfter)} ms; calls ${counts.calls}, ` +
        `acknowledged ${check.ackedEvents}, found ${check.ackedFound}, refused calls stored ${check.unackedWholeCalls}, ` +
        `partial ${check.partialCalls}; ${describeSequences(check)}`,
    );
    // Something was in flight at SIGTERM: both big batches and a call of most load workers (a worker can be
    // between two calls at that instant).
    expect(big.filter((a) => (a.startedAt ?? 0) < signalledAt && (a.endedAt ?? 0) > signalledAt).length).toBe(
      big.length,
    );
    expect(inFlight.length).toBeGreaterThanOrEqual(big.length + 4);
    expect(status).toEqual({ code: 0, signal: null });
    expect(exitedAfter).toBeLessThan(GRACE_MS + 2000);
    expect(big.map((a) => a.outcome)).toEqual(big.map(() => "acked"));
    expect(finished.length).toBe(inFlight.length);
    expect(failed.map(refusal).filter((how) => how.startsWith("other"))).toEqual([]);
    expect(late.map(refusal).filter((how) => how.startsWith("other"))).toEqual([]);
    // Refused well within the grace period, not served; on a busy machine the signal itself may be handled late.
    for (const a of late) expect((a.endedAt ?? 0) - (a.startedAt ?? 0)).toBeLessThan(GRACE_MS / 2);
    expect(check.ackedFound).toBe(check.ackedEvents);
    expect(check.lost).toEqual([]);
    // A refused call was refused before it ran: nothing of it is stored.
    expect(check.unackedWholeCalls).toBe(0);
    expect(check.partialCalls).toBe(0);
    expectAll(check.tenants, (t) => t.gapless, "check.tenants");
    expect(service.logs.filter((l) => l.includes('"level":50') || l.startsWith("stderr:"))).toEqual([]);
    // Draining ended with the calls, not with the grace period.
    expect(service.logs.filter((l) => l.includes("grace period over"))).toEqual([]);
  }, 60_000);

  // A connection the server accepted before it began stopping, whose first bytes (the HTTP/2 preface) arrive after:
  // under load the SIGTERM handler can run late, and such connections are common. Its session must be closed too, or
  // the drain waits out the whole grace period for a client that has nothing left to do.
  it("closes HTTP/2 sessions that start while it is stopping", async () => {
    const app = await startTestApp({ env: { SHUTDOWN_GRACE_MS: String(GRACE_MS) } });
    const socket = net.connect(app.port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    const started = performance.now();
    const closed = app.app.server.close();
    const session = http2.connect(app.url, { createConnection: () => socket });
    session.on("error", () => {});
    const reply = await h2Request(session, {
      ":method": "POST",
      ":path": "/audit.v1.AuditService/Create",
      "content-type": "application/grpc",
    });
    await closed;
    const tookMs = Math.round(performance.now() - started);
    session.destroy();
    await app.close();
    const status = reply.headers[":status"] ?? reply.error;
    console.log(
      `shutdown: a session started after close() began got ${status}; the drain took ${tookMs} ms (grace ${GRACE_MS})`,
    );
    expect(status).toBe(503);
    // The drain ended with that session, not with the grace period.
    expect(app.logs.filter((l) => l.includes("grace period over"))).toEqual([]);
    expect(tookMs).toBeLessThan(GRACE_MS);
  }, 60_000);
});
