import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { provisionTenant, transportFor } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectAll } from "../support/expect-all.js";
import { until } from "../support/held-writes.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { type Attempt, newEvents, runLoad, tally } from "./load.js";
import { killAllServiceProcesses, type ServiceProcess, startServiceProcess } from "./service-process.js";
import { checkStore, describeSequences } from "./verify-store.js";

const MiB = 1024 * 1024;
/** The pool's connect timeout (docs/reliability.md). */
const CONNECT_TIMEOUT_MS = 5000;
const TENANT = "outage";

let database: TestDatabase;
let proxy: TcpProxy;
let service: ServiceProcess;
let writer: string;

beforeAll(async () => {
  database = await createTestDatabase();
  const direct = new URL(database.url);
  proxy = new TcpProxy({ host: direct.hostname, port: Number(direct.port) });
  await proxy.start();
  const viaProxy = new URL(database.url);
  viaProxy.port = String(proxy.port);
  service = await startServiceProcess({ databaseUrl: viaProxy.toString() });
  writer = (await provisionTenant(service, TENANT)).readerWriter;
});

afterAll(async () => {
  await killAllServiceProcesses();
  await proxy?.cut();
  await database?.drop();
});

/** A live Tail stream (gRPC) of the tenant: the ids it delivered, and how it ended if it did. */
function tail() {
  const abort = new AbortController();
  const ids = new Set<string>();
  const state: { ended?: string } = {};
  const client = createClient(AuditService, transportFor(service, "grpc", writer));
  void (async () => {
    try {
      for await (const res of client.tail({}, { signal: abort.signal })) ids.add(res.event?.id ?? "");
      state.ended = "ended OK";
    } catch (error) {
      const e = ConnectError.from(error);
      if (!abort.signal.aborted) state.ended = `${Code[e.code]} ${e.findDetails(ErrorInfoSchema)[0]?.reason}`;
    }
  })();
  return {
    get ended() {
      return state.ended;
    },
    /** How many events it delivered so far. */
    get heardCount() {
      return ids.size;
    },
    /** Whether it delivers `id`, or ends, within `withinMs`; a bound for a stream that went deaf, not a timing. */
    async heard(id: string, withinMs = 30_000): Promise<boolean> {
      for (const started = performance.now(); performance.now() - started < withinMs; await sleep(50)) {
        if (ids.has(id)) return true;
        if (state.ended !== undefined) return false;
      }
      return false;
    },
    describe: () => `${state.ended ?? "still open"} after ${ids.size} events`,
    close: () => abort.abort(),
  };
}

/** One call on each surface that needs the database, and the answer each gave: a gRPC/Connect code or HTTP status. */
interface Probe {
  surface: string;
  answer: string;
  reason?: string;
  ms: number;
}

async function probeAll(): Promise<Probe[]> {
  const timed = async (surface: string, call: () => Promise<{ answer: string; reason?: string }>) => {
    const started = performance.now();
    const result = await call();
    return { surface, ...result, ms: Math.round(performance.now() - started) };
  };
  const rpc = (protocol: "grpc" | "connect", method: "create" | "list") => async () => {
    const client = createClient(AuditService, transportFor(service, protocol, writer));
    try {
      if (method === "create") await client.create({ event: newEvents("outage-probe", 1)[0] }, { timeoutMs: 10_000 });
      else await client.list({ pageSize: 1 }, { timeoutMs: 10_000 });
      return { answer: "OK" };
    } catch (error) {
      const e = ConnectError.from(error);
      return { answer: Code[e.code], reason: e.findDetails(ErrorInfoSchema)[0]?.reason };
    }
  };
  const http = (path: string, body: unknown) => async () => {
    try {
      const res = await fetch(`${service.url}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { authorization: `Bearer ${writer}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      return { answer: String(res.status), reason: /"(DATABASE_UNAVAILABLE)"/.exec(text)?.[1] };
    } catch (error) {
      return { answer: `no answer (${(error as Error).name})` };
    }
  };
  return Promise.all([
    timed("gRPC Create", rpc("grpc", "create")),
    timed("Connect Create", rpc("connect", "create")),
    timed("gRPC List", rpc("grpc", "list")),
    timed("REST POST /v1/tenants/{t}/events", http(`/v1/tenants/${TENANT}/events`, { action: "outage.rest" })),
    timed(
      "Axonize POST /odata/Audits",
      http("/odata/Audits", { action: "Outage", entityId: "e1", entityName: "e1", category: "Devices" }),
    ),
    timed("/readyz", http("/readyz", undefined)),
  ]);
}

const outageAnswers = {
  "gRPC Create": "Unavailable",
  "Connect Create": "Unavailable",
  "gRPC List": "Unavailable",
  "REST POST /v1/tenants/{t}/events": "503",
  "Axonize POST /odata/Audits": "503",
  "/readyz": "503",
};
const healthyAnswers = {
  "gRPC Create": "OK",
  "Connect Create": "OK",
  "gRPC List": "OK",
  "REST POST /v1/tenants/{t}/events": "200",
  "Axonize POST /odata/Audits": "201",
  "/readyz": "200",
};

const answers = (probes: Probe[]) => Object.fromEntries(probes.map((p) => [p.surface, p.answer]));

describe("database outage", () => {
  it("fails fast with UNAVAILABLE/503 while PostgreSQL is unreachable, and recovers by itself", async () => {
    // The positive control: every surface answers while the database is there (readiness first, which a busy
    // machine can hold back a moment after start).
    await until("/readyz is 200", async () => (await fetch(`${service.url}/readyz`)).status === 200);
    expect(answers(await probeAll())).toEqual(healthyAnswers);
    const stop = new AbortController();
    const loadAttempts: Attempt[] = [];
    const load = runLoad({
      attempts: loadAttempts,
      url: service.url,
      writers: [{ tenant: TENANT, token: writer }],
      workers: 4,
      maxBatch: 20,
      prefix: "outage",
      signal: stop.signal,
      stopOnFailure: false,
    });
    // A Tail stream open across the outage: it may end with UNAVAILABLE (TAIL_INTERRUPTED, resumable) or carry on.
    const across = tail();
    // Cut once the load's calls are being answered and the stream has delivered one of them.
    await until("the load runs and the Tail stream delivers", async () => {
      return loadAttempts.filter((a) => a.outcome === "acked").length >= 4 && across.heardCount > 0;
    });
    const rssBefore = await service.rssBytes();
    const pid = service.pid;

    await proxy.cut();
    const cutAt = performance.now();
    const during: Probe[] = [];
    while (performance.now() - cutAt < 4000) {
      during.push(...(await probeAll()));
      await sleep(200);
    }
    console.log(`outage probes: ${describeProbes(during)}`);
    const rssDuring = await service.rssBytes();
    for (const probe of during)
      expect([probe.surface, probe.answer]).toEqual([
        probe.surface,
        outageAnswers[probe.surface as keyof typeof outageAnswers],
      ]);
    for (const probe of during.filter((p) => p.surface !== "/readyz")) {
      expect([probe.surface, probe.reason]).toEqual([probe.surface, "DATABASE_UNAVAILABLE"]);
    }
    const slowest = Math.max(...during.map((p) => p.ms));
    console.log(
      `outage: ${during.length} probes over 4 s on 6 surfaces, all UNAVAILABLE (DATABASE_UNAVAILABLE) or 503, ` +
        `slowest ${slowest} ms; RSS ${mib(rssBefore)} -> ${mib(rssDuring)} MiB; process ${service.alive() ? "alive" : "DEAD"}`,
    );
    // Failing fast: a call that waited for a connection would end at the pool's connect timeout (5 s).
    expect(slowest).toBeLessThan(CONNECT_TIMEOUT_MS);
    expect(service.alive()).toBe(true);
    expect(rssDuring - rssBefore).toBeLessThan(64 * MiB);

    await proxy.restore();
    const restoredAt = performance.now();
    // Recovering by itself, without a restart: the bounds are for a service that never recovers.
    await until("/readyz is 200 again", async () => (await fetch(`${service.url}/readyz`)).status === 200);
    const readyAfter = performance.now() - restoredAt;
    // The pool reconnects on demand: a call may still meet a connection it had not yet noticed was gone.
    let after: Probe[] = [];
    await until("every surface answers as before the outage", async () => {
      after = await probeAll();
      return JSON.stringify(answers(after)) === JSON.stringify(healthyAnswers);
    });
    const recoveredAfter = performance.now() - restoredAt;
    // A stream opened after the outage hears a new commit: the LISTEN connection came back by itself. It is
    // subscribed once it delivers one of the load's events; the marker is written after that.
    const fresh = tail();
    await until("the new Tail stream delivers", async () => fresh.heardCount > 0 || fresh.ended !== undefined);
    const [marker] = newEvents("outage-tail", 1);
    const { event: markerStored } = await createClient(AuditService, transportFor(service, "grpc", writer)).create({
      event: marker,
    });
    const heardAfter = await fresh.heard(marker?.id ?? "");
    // The stream that stayed open through the outage is live again too.
    const heardAcross = across.ended !== undefined || (await across.heard(marker?.id ?? ""));
    stop.abort();
    const attempts = await load;
    const counts = tally(attempts);
    const check = await checkStore(database.url, attempts);
    const codes = new Set(attempts.filter((a) => a.outcome === "failed").map((a) => Code[a.code ?? Code.Unknown]));
    const internal = service.logs.filter((line) => line.includes('"level":50') || line.startsWith("stderr:"));
    console.log(
      `outage recovery: /readyz 200 after ${Math.round(readyAfter)} ms, every surface healthy after ${Math.round(recoveredAfter)} ms, ` +
        `same pid ${service.pid === pid}; background load ${counts.calls} calls (${counts.ackedCalls} acked, ${counts.failedCalls} failed: ${[...codes].join(", ")}), ` +
        `acknowledged ${check.ackedEvents}, found ${check.ackedFound}, partial ${check.partialCalls}, ${describeSequences(check)}; ` +
        `error log lines ${internal.length}; proxy connections ${proxy.accepted}; Tail open across the outage ` +
        `${across.describe()}, Tail opened after it heard event seq ${markerStored?.sequence} ${heardAfter ? "yes" : "NO"}`,
    );
    across.close();
    fresh.close();
    expect(heardAfter).toBe(true);
    expect(heardAcross).toBe(true);
    expect([undefined, "Unavailable TAIL_INTERRUPTED"]).toContain(across.ended);
    expect(answers(after)).toEqual(healthyAnswers);
    expect(service.pid).toBe(pid);
    expect(service.alive()).toBe(true);
    expect([...codes].filter((c) => c !== "Unavailable")).toEqual([]);
    expect(check.ackedFound).toBe(check.ackedEvents);
    expect(check.partialCalls).toBe(0);
    expectAll(check.tenants, (t) => t.gapless, "check.tenants");
    expect(internal).toEqual([]);
  }, 90_000);
});

/** Per surface: each answer with its count, and the slowest call. */
function describeProbes(probes: Probe[]): string {
  const bySurface = new Map<string, Probe[]>();
  for (const p of probes) bySurface.set(p.surface, [...(bySurface.get(p.surface) ?? []), p]);
  return [...bySurface]
    .map(([surface, list]) => {
      const counts = new Map<string, number>();
      for (const p of list) counts.set(p.answer, (counts.get(p.answer) ?? 0) + 1);
      const answers = [...counts].map(([answer, n]) => `${n}x ${answer}`).join(" ");
      return `${surface}: ${answers}, max ${Math.max(...list.map((p) => p.ms))} ms`;
    })
    .join("; ");
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}
