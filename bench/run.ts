/**
 * `npm run bench`: the service against the limits of its parts, measured in one run on one machine.
 *
 *   1. raw postgres.js into the same schema: 1000-row multi-row INSERT on 2 connections, and COPY (storage limit)
 *   2. BatchCreate over gRPC, 500-event batches, 4 concurrent callers, against (1)
 *   3. unary Create over gRPC, 64 concurrent streams, against a bare Connect echo server (framework limit)
 *   4. List, first and a later page of 100, tenant + 24 h window, with and without an actor filter, 1M events, at 1
 *      and 4 concurrent streams
 *   5. Create over REST and the Axonize legacy route against Connect JSON, HTTP/1.1
 *   6. BatchCreate and unary Create with the verifiable log on (the default, as in 2 and 3) against the same service
 *      with VERIFIABLE_LOG=false, in turn
 *
 * PostgreSQL is DATABASE_URL's server or an embedded one kept in .data/bench. Writes go to a fresh database that is
 * dropped at the end; the List data set lives in `audit_bench_list` and is loaded once (COPY, time-bounded, resumed
 * by the next run if cut short). Each figure is the median of BENCH_ROUNDS runs of BENCH_SECONDS seconds.
 * Prints a table and writes everything to bench/results/bench-<time>.json.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import { create, type DescMessage, type MessageInitShape, toBinary, toJson } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { BatchCreateRequestSchema, CreateRequestSchema, ListRequestSchema } from "../gen/audit/v1/audit_service_pb.js";
import { AuditEventSchema } from "../gen/audit/v1/event_pb.js";
import type { Database } from "../src/store/database.js";
import { pgTimestampMicros } from "../src/store/time.js";
import { ACTORS, copyLine, RAW_COLUMNS, rawRow, sampleEvent, sampleNewEvent } from "./support/fixtures.js";
import { grpcFrame, type LoadResult, type LoadSpec, loadTool, runLoad } from "./support/load.js";
import { type BenchServer, dropDatabase, openDatabase, startBenchServer } from "./support/postgres.js";
import { type CpuShares, measureCpu, round, watchRss } from "./support/system.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LIST_EVENTS = Number(process.env.BENCH_LIST_EVENTS ?? 1_000_000);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 300);
const LIST_DATABASE = "audit_bench_list";
const LIST_TENANT = "bench-list";
const LIST_DAYS = 10;
/**
 * Concurrent List streams: 1 is a reader's own latency; 4 keeps the single-threaded service busy, so its p99 adds the
 * wait behind the other three pages.
 */
const LIST_STREAMS = (process.env.BENCH_LIST_STREAMS ?? "1,4").split(",").map(Number);
const CORES = os.availableParallelism();
/**
 * BENCH_ONLY=raw,batch,unary,echo-ref,http,list,vlog runs only those parts (e.g. to profile one). `tracing` is never run
 * by default: BENCH_ONLY=unary,tracing adds unary Create with tracing on beside the usual rows, which run with it off.
 */
const ONLY = process.env.BENCH_ONLY?.split(",");
const selected = (part: string) => !ONLY || ONLY.includes(part);

interface Row {
  name: string;
  value: number | null;
  unit: string;
  p50Ms?: number;
  p99Ms?: number;
  /** value / the named row's value. */
  ratio?: { to: string; value: number; target?: number };
  cpu?: CpuShares & { loadgen: number };
  /**
   * CPU microseconds the server process (service or echo) spent per request: steadier than throughput on a machine
   * whose cores other work also wants.
   */
  serverCpuUsPerRequest?: number;
  tool?: string;
  note?: string;
  rounds?: number[];
}

const rows: Row[] = [];
/** The superadmin token the bench starts each service with, to create its tenants and their API keys. */
const ADMIN_TOKEN = `bench-admin-${randomBytes(24).toString("base64url")}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Service {
  pid: number;
  url: string;
  stop(): Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** An OTLP/HTTP endpoint that accepts every export and keeps nothing: what tracing costs the service alone. */
async function startOtlpSink(): Promise<{ url: string; exports(): number; close(): Promise<void> }> {
  let exports = 0;
  const sink = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      exports++;
      res.writeHead(200, { "content-type": "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(sink.address() as net.AddressInfo).port}`,
    exports: () => exports,
    close: () => new Promise((resolve) => sink.close(() => resolve())),
  };
}

/** The service as `npm start` runs it, in its own process, on a database of the bench server. */
async function startService(databaseUrl: string, env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort();
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir=bench/results/profiles"] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", "src/main.ts"], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      AUDIT_ADMIN_TOKEN: ADMIN_TOKEN,
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}`);
    const ready = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) throw new Error("the service did not become ready in 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return { pid: child.pid as number, url, stop: () => stopChild(child) };
}

async function startEcho(mode: "connect" | "node-http2" | "grpc-js"): Promise<Service> {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/echo-server.ts", mode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once("data", (chunk) => resolve(JSON.parse(String(chunk)).port));
    child.once("exit", (code) => reject(new Error(`the echo server exited with ${code}`)));
  });
  return { pid: child.pid as number, url: `http://127.0.0.1:${port}`, stop: () => stopChild(child) };
}

function grpcBody<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Buffer {
  return grpcFrame(toBinary(schema, create(schema, init)));
}

/** A Connect JSON call, for the few set-up requests (admin, page tokens); the measurements use gRPC or h2load. */
async function call(
  url: string,
  method: string,
  body: unknown,
  authorization: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/audit.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw Object.assign(new Error(`${method}: HTTP ${res.status} ${JSON.stringify(json)}`), { json });
  return json;
}

/**
 * Creates the tenants through the AdminService with the superadmin token (a tenant left from an earlier run is
 * reused) and gives each a writer and reader API key: the credentials the measured calls present.
 */
async function provision(service: Service, tenants: string[]): Promise<Map<string, string>> {
  const admin = `Bearer ${ADMIN_TOKEN}`;
  const keys = new Map<string, string>();
  for (const tenant of tenants) {
    try {
      await call(service.url, "AdminService/CreateTenant", { tenant: { id: tenant, displayName: tenant } }, admin);
    } catch (error) {
      if ((error as { json?: { code?: string } }).json?.code !== "already_exists") throw error;
    }
    const key = await call(
      service.url,
      "AdminService/CreateApiKey",
      { tenant, name: `bench-${Date.now()}`, roles: ["ROLE_WRITER", "ROLE_READER"] },
      admin,
    );
    keys.set(tenant, `Bearer ${key.token as string}`);
  }
  return keys;
}

const grpcHeaders = (authorization: string) => ({ "content-type": "application/grpc", te: "trailers", authorization });

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

/** PostgreSQL's processes when the bench runs it; with DATABASE_URL they are not ours to see. */
const pgGroup = (server: BenchServer): Record<string, () => number[]> =>
  server.pids().length > 0 ? { postgres: server.pids } : {};

/**
 * Before each round: vacuum and checkpoint the write database, so the autovacuum and checkpoint that one round's
 * inserts set off run here, not on the CPU of whatever is measured next (on two cores they took a third of it).
 * Set in main once the database is open.
 */
let settleDatabase: () => Promise<void> = async () => {};

async function vacuumAndCheckpoint(db: Database) {
  await db.sql`vacuum (analyze) events`;
  // CHECKPOINT needs superuser or pg_checkpoint; a DATABASE_URL role without it just skips this part.
  await db.sql`checkpoint`.catch(() => {});
}

/**
 * Runs a measurement ROUNDS times and keeps the median round (by `value`), with the CPU shares of that round.
 * `pids` names the processes whose CPU is counted, besides the load generator's own.
 */
async function rounds<T extends { value: number; cpuSeconds: number }>(
  pids: Record<string, () => number[]>,
  once: () => Promise<T>,
): Promise<Measured<T>> {
  const [measured] = await interleavedRounds([{ pids, once }]);
  return measured as Measured<T>;
}

interface Measured<T> {
  result: T;
  cpu: CpuShares & { loadgen: number };
  values: number[];
}

/**
 * Rounds of several measurements taken in turn (A, B, A, B, ...), so each sees the machine as the others did: on a
 * shared machine, two measurements taken minutes apart differ by more than what they compare.
 */
async function interleavedRounds<T extends { value: number; cpuSeconds: number }>(
  parts: { pids: Record<string, () => number[]>; once: () => Promise<T> }[],
): Promise<Measured<T>[]> {
  const runs = parts.map(() => [] as { result: T; cpu: CpuShares & { loadgen: number } }[]);
  for (let i = 0; i < ROUNDS; i++) {
    for (const [p, part] of parts.entries()) {
      await settleDatabase();
      const stop = measureCpu(part.pids);
      const result = await part.once();
      const cpu = stop();
      runs[p]?.push({ result, cpu: { ...cpu, loadgen: round((100 * result.cpuSeconds) / (cpu.seconds * CORES)) } });
    }
  }
  return runs.map((partRuns) => {
    const values = partRuns.map((r) => r.result.value);
    const chosen = partRuns.find((r) => r.result.value === median(values)) as (typeof partRuns)[number];
    return { ...chosen, values };
  });
}

function serverCpuUs(cpu: CpuShares, requests: number): number | undefined {
  const share = cpu.shares.service ?? cpu.shares.echo;
  if (share === undefined || requests === 0) return undefined;
  return round(((share / 100) * cpu.seconds * CORES * 1e6) / requests, 0);
}

/**
 * Calls in flight when the load generator stops are still committed: let them land before counting, so they are
 * counted with the run that sent them.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1000));

async function count(db: Database, tenantPattern: string): Promise<number> {
  const [row] = await db.sql<{ n: string }[]>`select count(*) as n from events where tenant like ${tenantPattern}`;
  return Number(row?.n ?? 0);
}

// 1. Storage limit ------------------------------------------------------------------------------------------------

/** Raw rounds so far: each writes its own tenants, whichever writer runs it. */
let rawRuns = 0;

/** One round of raw postgres.js writes (2 connections, 1000 rows a statement), by INSERT or by COPY. */
function rawWriters(db: Database) {
  const templates = Array.from({ length: 1000 }, (_, i) => sampleNewEvent(i, 0n));
  const loop = async (write: (tenant: string, from: number) => Promise<number>) => {
    const tenant = `raw-${rawRuns++}`;
    const deadline = performance.now() + SECONDS * 1000;
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    const written = await Promise.all(
      [0, 1].map(async (connection) => {
        let n = 0;
        while (performance.now() < deadline) n += await write(`${tenant}-${connection}`, n);
        return n;
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    const total = written.reduce((a, b) => a + b, 0);
    return { value: total / ((performance.now() - started) / 1000), cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  };
  const micros = () => BigInt(Date.now()) * 1000n;
  return {
    insert: () =>
      loop(async (tenant, from) => {
        const now = micros();
        const batch = templates.map((t, i) => rawRow(tenant, from + i + 1, t, now));
        await db.sql`insert into events ${db.sql(batch, RAW_COLUMNS)}`;
        return batch.length;
      }),
    copy: () =>
      loop(async (tenant, from) => {
        const now = micros();
        const stream = await db.sql`copy events (${db.sql.unsafe(RAW_COLUMNS.join(", "))}) from stdin`.writable();
        const lines = templates.map((t, i) => copyLine(rawRow(tenant, from + i + 1, t, now)));
        await new Promise<void>((resolve, reject) => {
          stream.on("error", reject);
          stream.end(lines.join(""), () => resolve());
        });
        await new Promise<void>((resolve, reject) => {
          stream.on("finish", resolve);
          stream.on("close", resolve);
          stream.on("error", reject);
          if (stream.writableFinished) resolve();
        });
        return lines.length;
      }),
  };
}

function rawRowOf(name: string, measured: Measured<{ value: number }>, note?: string): Row {
  return {
    name,
    value: round(measured.result.value, 0),
    unit: "events/s",
    cpu: measured.cpu,
    rounds: measured.values.map((v) => round(v, 0)),
    note,
  };
}

/** The storage limit. With BatchCreate selected, raw INSERT is measured there instead, in turn with it. */
async function rawBaseline(server: BenchServer, db: Database, withInsert: boolean) {
  const raw = rawWriters(db);
  if (withInsert) {
    const insert = await rounds(pgGroup(server), raw.insert);
    rows.push(rawRowOf("raw INSERT, 1000 rows x 2 connections", insert, "the bench process is the load generator"));
  }
  rows.push(rawRowOf("raw COPY, 1000 rows x 2 connections", await rounds(pgGroup(server), raw.copy)));
}

// 2, 3, 5. Writes through the service -----------------------------------------------------------------------------

async function load(spec: Omit<LoadSpec, "seconds">, seconds = SECONDS): Promise<LoadResult> {
  const result = await runLoad({ ...spec, seconds });
  if (result.failed > 0)
    throw new Error(`${spec.url}: ${result.failed} requests failed: ${result.failures.join("; ")}`);
  return result;
}

async function batchCreate(server: BenchServer, service: Service, db: Database) {
  const events = Array.from({ length: 500 }, (_, i) => sampleEvent(i));
  const tenants = [0, 1, 2, 3].map((i) => `bench-batch-${i}`);
  const keys = await provision(service, tenants);
  const spec = {
    url: `${service.url}/audit.v1.AuditService/BatchCreate`,
    http1: false,
    grpc: true,
    requests: tenants.map((tenant) => ({
      headers: grpcHeaders(keys.get(tenant) as string),
      body: grpcBody(BatchCreateRequestSchema, { tenant, events }),
    })),
    connections: 4,
    streamsPerConnection: 1,
  };
  await load(spec, 2);
  await settle();
  // Raw INSERT and BatchCreate in turn, so the ratio compares them on the same machine, database and table size.
  const [raw, measured] = await interleavedRounds<{ value: number; cpuSeconds: number } & Partial<LoadResult>>([
    { pids: pgGroup(server), once: rawWriters(db).insert },
    {
      pids: { service: () => [service.pid], ...pgGroup(server) },
      once: async () => {
        const before = await count(db, "bench-batch-%");
        const result = await load(spec);
        await settle();
        const stored = (await count(db, "bench-batch-%")) - before;
        if (stored < result.ok * 500 || stored > (result.ok + 4) * 500) {
          throw new Error(`BatchCreate: ${stored} stored, ${result.ok * 500} acknowledged`);
        }
        return { ...result, value: (result.ok * 500) / result.seconds };
      },
    },
  ]);
  if (!raw || !measured) throw new Error("interleaved rounds returned too few results");
  const rawName = "raw INSERT, 1000 rows x 2 connections";
  rows.push(rawRowOf(rawName, raw, "in turn with BatchCreate; the bench process is the load generator"));
  const ratios = measured.values.map((v, i) => v / (raw.values[i] as number));
  rows.push({
    name: "BatchCreate gRPC, 500 events x 4 callers",
    value: round(measured.result.value, 0),
    unit: "events/s",
    p50Ms: measured.result.p50Ms,
    p99Ms: measured.result.p99Ms,
    ratio: { to: rawName, value: round(median(ratios), 2), target: 0.7 },
    cpu: measured.cpu,
    serverCpuUsPerRequest: serverCpuUs(measured.cpu, measured.result.ok ?? 0),
    tool: measured.result.tool,
    rounds: measured.values.map((v) => round(v, 0)),
    note: `one tenant per caller; ratio per round ${ratios.map((r) => round(r, 2)).join(", ")}`,
  });
}

async function unaryCreate(server: BenchServer, service: Service, db: Database, databaseUrl: string) {
  const body = grpcBody(CreateRequestSchema, { tenant: "bench-unary", event: sampleEvent(7) });
  const headers = grpcHeaders((await provision(service, ["bench-unary"])).get("bench-unary") as string);
  const spec = (url: string) => ({
    url: `${url}/audit.v1.AuditService/Create`,
    http1: false,
    grpc: true,
    requests: [{ headers, body }],
    connections: 4,
    streamsPerConnection: 16,
  });
  const echoRow = (name: string, bare: Measured<LoadResult & { value: number }>): Row => ({
    name,
    value: bare.result.perSecond,
    unit: "req/s",
    p50Ms: bare.result.p50Ms,
    p99Ms: bare.result.p99Ms,
    cpu: bare.cpu,
    serverCpuUsPerRequest: serverCpuUs(bare.cpu, bare.result.ok),
    tool: bare.result.tool,
    rounds: bare.values,
  });
  const echoRound = (echo: Service) => async () => {
    const result = await load(spec(echo.url));
    return { ...result, value: result.perSecond };
  };
  const createRound = (target: Service) => async () => {
    const before = await count(db, "bench-unary");
    const result = await load(spec(target.url));
    await settle();
    const stored = (await count(db, "bench-unary")) - before;
    // h2load counts HTTP 200 as success, and a gRPC error is a 200 too: check what reached the table. Calls still in
    // flight when the load generator stops are stored without being counted.
    if (stored < result.ok || stored > result.ok + 64)
      throw new Error(`Create: ${stored} stored, ${result.ok} acknowledged`);
    return { ...result, value: result.perSecond };
  };
  /**
   * Create measured in turn with the bare Connect echo (both processes up, one loaded at a time), so the ratio
   * compares the two under the same conditions; it is the median of the per-round ratios.
   */
  const againstEcho = async (target: Service, name: string) => {
    const echo = await startEcho("connect");
    try {
      await load(spec(echo.url), 2);
      await load(spec(target.url), 2);
      await settle();
      const [bare, measured] = (await interleavedRounds([
        { pids: { echo: () => [echo.pid] }, once: echoRound(echo) },
        { pids: { service: () => [target.pid], ...pgGroup(server) }, once: createRound(target) },
      ])) as [Measured<LoadResult & { value: number }>, Measured<LoadResult & { value: number }>];
      const ratios = measured.values.map((v, i) => v / (bare.values[i] as number));
      rows.push(echoRow("bare Connect echo, 64 streams, in turn with the row below", bare), {
        name,
        value: measured.result.perSecond,
        unit: "req/s",
        p50Ms: measured.result.p50Ms,
        p99Ms: measured.result.p99Ms,
        ratio: { to: "the echo rounds taken in turn", value: round(median(ratios), 2), target: 0.8 },
        cpu: measured.cpu,
        serverCpuUsPerRequest: serverCpuUs(measured.cpu, measured.result.ok),
        tool: measured.result.tool,
        rounds: measured.values,
        note: `ratio per round ${ratios.map((r) => round(r, 2)).join(", ")}`,
      });
    } finally {
      await echo.stop();
    }
  };
  await againstEcho(service, "Create gRPC, 64 streams (group commit)");
  if (selected("echo-ref")) {
    for (const { mode, name } of [
      { mode: "node-http2", name: "reference: node:http2 gRPC-shaped echo" },
      { mode: "grpc-js", name: "reference: @grpc/grpc-js echo" },
    ] as const) {
      const echo = await startEcho(mode);
      try {
        await load(spec(echo.url), 2);
        rows.push(echoRow(name, await rounds({ echo: () => [echo.pid] }, echoRound(echo))));
      } finally {
        await echo.stop();
      }
    }
    // The same service with every call on Connect's own gRPC handler: what the direct path saves.
    const connectPath = await startService(databaseUrl, { GRPC_FAST_PATH: "false" });
    try {
      await againstEcho(connectPath, "reference: Create, GRPC_FAST_PATH=false");
    } finally {
      await connectPath.stop();
    }
  }
  if (ONLY?.includes("tracing")) {
    // Every call traced (a server span and its store spans) and exported over OTLP. The rows above are the same
    // service with no OTEL_* variables, i.e. tracing off: compared with earlier runs they show what off costs.
    const sink = await startOtlpSink();
    const traced = await startService(databaseUrl, {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    });
    try {
      await againstEcho(traced, "reference: Create with tracing on, spans exported over OTLP");
    } finally {
      await traced.stop();
      await sink.close();
    }
    if (sink.exports() === 0) throw new Error("tracing was on but no span reached the OTLP sink");
  }
}

/**
 * What the verifiable log costs the write paths: the same BatchCreate and Create loads against two services, one with
 * the log on and one with VERIFIABLE_LOG=false, in turn. Each has a database of its own on the same server: the log
 * refuses writes to a tree another instance let fall behind, and the superadmin's records share one tenant.
 */
async function logCost(server: BenchServer, databaseUrl: string, offDatabase: string) {
  const on = await startService(databaseUrl);
  const offDb = await openDatabase(server, offDatabase, 1);
  const off = await startService(server.databaseUrl(offDatabase), { VERIFIABLE_LOG: "false" });
  try {
    const shapes = [
      {
        name: "BatchCreate gRPC, 500 events x 4 callers",
        path: "BatchCreate",
        perCall: 500,
        tenants: [0, 1, 2, 3].map((i) => `vlog-batch-${i}`),
        body: (tenant: string) =>
          grpcBody(BatchCreateRequestSchema, { tenant, events: Array.from({ length: 500 }, (_, i) => sampleEvent(i)) }),
        connections: 4,
        streams: 1,
      },
      {
        name: "Create gRPC, 64 streams (group commit)",
        path: "Create",
        perCall: 1,
        tenants: ["vlog-unary"],
        body: (tenant: string) => grpcBody(CreateRequestSchema, { tenant, event: sampleEvent(7) }),
        connections: 4,
        streams: 16,
      },
    ];
    for (const shape of shapes) {
      const specs = new Map<Service, Parameters<typeof load>[0]>();
      for (const [target, prefix] of [
        [on, "on"],
        [off, "off"],
      ] as const) {
        const tenants = shape.tenants.map((t) => `${t}-${prefix}`);
        const keys = await provision(target, tenants);
        specs.set(target, {
          url: `${target.url}/audit.v1.AuditService/${shape.path}`,
          http1: false,
          grpc: true,
          requests: tenants.map((tenant) => ({
            headers: grpcHeaders(keys.get(tenant) as string),
            body: shape.body(tenant),
          })),
          connections: shape.connections,
          streamsPerConnection: shape.streams,
        });
      }
      const once = (target: Service) => async () => {
        const result = await load(specs.get(target) as Parameters<typeof load>[0]);
        await settle();
        return { ...result, value: (result.ok * shape.perCall) / result.seconds };
      };
      for (const target of [on, off]) await load(specs.get(target) as Parameters<typeof load>[0], 2);
      await settle();
      const [without, withLog] = await interleavedRounds([
        { pids: { service: () => [off.pid], ...pgGroup(server) }, once: once(off) },
        { pids: { service: () => [on.pid], ...pgGroup(server) }, once: once(on) },
      ]);
      if (!without || !withLog) throw new Error("interleaved rounds returned too few results");
      const ratios = withLog.values.map((v, i) => v / (without.values[i] as number));
      const row = (name: string, m: Measured<LoadResult & { value: number }>): Row => ({
        name,
        value: round(m.result.value, 0),
        unit: "events/s",
        p50Ms: m.result.p50Ms,
        p99Ms: m.result.p99Ms,
        cpu: m.cpu,
        serverCpuUsPerRequest: serverCpuUs(m.cpu, m.result.ok),
        tool: m.result.tool,
        rounds: m.values.map((v) => round(v, 0)),
      });
      const offName = `${shape.name}, VERIFIABLE_LOG=false`;
      rows.push(row(offName, without), {
        ...row(`${shape.name}, verifiable log on`, withLog),
        ratio: { to: offName, value: round(median(ratios), 2), target: 0.9 },
        note: `in turn with the row above; ratio per round ${ratios.map((r) => round(r, 2)).join(", ")}`,
      });
    }
  } finally {
    await off.stop();
    await on.stop();
    await offDb.close();
    await dropDatabase(server, offDatabase);
  }
}

async function httpRoutes(server: BenchServer, service: Service) {
  const event = toJson(AuditEventSchema, create(AuditEventSchema, sampleEvent(11)));
  const routes: { name: string; path: string; headers: Record<string, string>; body: unknown }[] = [
    {
      name: "Create Connect JSON, HTTP/1.1, 64 connections",
      path: "/audit.v1.AuditService/Create",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: { tenant: "bench-http", event },
    },
    {
      name: "Create REST, HTTP/1.1, 64 connections",
      path: "/v1/tenants/bench-http/events",
      headers: { "content-type": "application/json" },
      body: event,
    },
    {
      name: "Create Axonize legacy, HTTP/1.1, 64 connections",
      path: "/odata/Audits",
      headers: { "content-type": "application/json" },
      body: {
        entityName: "device123",
        entityId: "1321233231123",
        action: "CreateDevice",
        category: "Devices",
        userEmail: "ops@example.com",
        userName: "Ops",
        ip: "10.1.2.3",
        result: "OK",
        requestDurationMs: 12.5,
        roles: ["admin"],
        additionalInfo: [{ Key: "serialNumber", Value: "SN-1" }],
      },
    },
  ];
  const authorization = (await provision(service, ["bench-http"])).get("bench-http") as string;
  let connectJson: number | undefined;
  for (const route of routes) {
    const headers = { ...route.headers, authorization };
    const body = Buffer.from(JSON.stringify(route.body));
    const probe = await fetch(`${service.url}${route.path}`, { method: "POST", headers, body });
    const text = await probe.text();
    if (!probe.ok) {
      rows.push({
        name: route.name,
        value: null,
        unit: "req/s",
        note:
          probe.status === 404
            ? "not available: the route answers 404 (not built yet)"
            : `error: HTTP ${probe.status} ${text.slice(0, 160)}`,
      });
      continue;
    }
    const spec = {
      url: `${service.url}${route.path}`,
      http1: true,
      grpc: false,
      requests: [{ headers, body }],
      connections: 64,
      streamsPerConnection: 1,
    };
    await load(spec, 2);
    const measured = await rounds({ service: () => [service.pid], ...pgGroup(server) }, async () => {
      const result = await load(spec);
      return { ...result, value: result.perSecond };
    });
    connectJson ??= measured.result.perSecond;
    rows.push({
      name: route.name,
      value: measured.result.perSecond,
      unit: "req/s",
      p50Ms: measured.result.p50Ms,
      p99Ms: measured.result.p99Ms,
      ratio: connectJson
        ? { to: routes[0]?.name as string, value: round(measured.result.perSecond / connectJson, 2) }
        : undefined,
      cpu: measured.cpu,
      serverCpuUsPerRequest: serverCpuUs(measured.cpu, measured.result.ok),
      tool: measured.result.tool,
      rounds: measured.values,
    });
  }
}

// 4. Reads over a million events -----------------------------------------------------------------------------------

/**
 * Tops the List tenant up to LIST_EVENTS with COPY, spread over LIST_DAYS days ending now, for at most LOAD_SECONDS.
 * A run cut short leaves a consistent prefix that the next run continues.
 */
async function ensureListData(db: Database): Promise<{ events: number; loadedNow: number; seconds: number }> {
  const [state] = await db.sql<{ n: string; top: string | null }[]>`
    select count(*) as n, max(sequence) as top from events where tenant = ${LIST_TENANT}`;
  let have = Number(state?.n ?? 0);
  const started = performance.now();
  const startHave = have;
  if (have < LIST_EVENTS) {
    console.log(`loading List data: ${have} of ${LIST_EVENTS} events present, at most ${LOAD_SECONDS} s`);
    const templates = Array.from({ length: 1000 }, (_, i) => sampleNewEvent(i, 0n));
    const spanMicros = BigInt(LIST_DAYS) * 86_400_000_000n;
    const endMicros = BigInt(Date.now()) * 1000n;
    const chunk = 20_000;
    while (have < LIST_EVENTS && performance.now() - started < LOAD_SECONDS * 1000) {
      const n = Math.min(chunk, LIST_EVENTS - have);
      const stream = await db.sql`copy events (${db.sql.unsafe(RAW_COLUMNS.join(", "))}) from stdin`.writable();
      const lines: string[] = [];
      for (let k = 0; k < n; k++) {
        const sequence = have + k + 1;
        const at = endMicros - spanMicros + (spanMicros * BigInt(sequence)) / BigInt(LIST_EVENTS);
        const row = rawRow(LIST_TENANT, sequence, templates[sequence % 1000] as (typeof templates)[number], at);
        lines.push(copyLine({ ...row, actor_id: `user-${sequence % ACTORS}` }));
      }
      await new Promise<void>((resolve, reject) => {
        stream.on("error", reject);
        stream.on("finish", resolve);
        stream.end(lines.join(""));
      });
      have += n;
      await db.sql`
        insert into tenant_sequences (tenant, last_sequence) values (${LIST_TENANT}, ${have})
        on conflict (tenant) do update set last_sequence = excluded.last_sequence`;
    }
    await db.sql`analyze events`;
  }
  return { events: have, loadedNow: have - startHave, seconds: round((performance.now() - started) / 1000) };
}

async function listPages(server: BenchServer, service: Service, db: Database) {
  const authorization = (await provision(service, [LIST_TENANT])).get(LIST_TENANT) as string;
  const [bounds] = await db.sql<{ top: string }[]>`
    select max(occurred_at) as top from events where tenant = ${LIST_TENANT}`;
  const endMs = Number(pgTimestampMicros(bounds?.top as string) / 1000n) + 1;
  const window = { startTime: timestampFromMs(endMs - 86_400_000), endTime: timestampFromMs(endMs) };
  const queries = [
    { name: "24 h window", filter: {} },
    { name: "24 h window + actor", filter: { actorId: "user-42" } },
  ];
  for (const query of queries) {
    const request = { tenant: LIST_TENANT, pageSize: 100, ...window, ...query.filter };
    // Follow the pages over Connect JSON to the token of page 5 (or the last page, on a smaller data set).
    let token = "";
    let page = 1;
    for (; page < 5; page++) {
      const json = toJson(ListRequestSchema, create(ListRequestSchema, { ...request, pageToken: token }));
      const next = ((await call(service.url, "AuditService/List", json, authorization)).nextPageToken as string) ?? "";
      if (!next) break;
      token = next;
    }
    for (const [label, pageToken] of [
      ["page 1", ""],
      [`page ${page}`, token],
    ] as const) {
      for (const streams of LIST_STREAMS) {
        const spec = {
          url: `${service.url}/audit.v1.AuditService/List`,
          http1: false,
          grpc: true,
          requests: [
            { headers: grpcHeaders(authorization), body: grpcBody(ListRequestSchema, { ...request, pageToken }) },
          ],
          connections: 1,
          streamsPerConnection: streams,
        };
        await load(spec, 1);
        const measured = await rounds({ service: () => [service.pid], ...pgGroup(server) }, async () => {
          const result = await load(spec);
          return { ...result, value: result.p99Ms };
        });
        rows.push({
          name: `List ${query.name}, ${label} of 100, ${streams} stream${streams === 1 ? "" : "s"}`,
          value: measured.result.perSecond,
          unit: "req/s",
          p50Ms: measured.result.p50Ms,
          p99Ms: measured.result.p99Ms,
          cpu: measured.cpu,
          serverCpuUsPerRequest: serverCpuUs(measured.cpu, measured.result.ok),
          tool: measured.result.tool,
          rounds: measured.values,
          note: "rounds are p99 ms",
        });
      }
    }
  }
}

// Report ------------------------------------------------------------------------------------------------------------

function table(): string {
  const header = ["measurement", "value", "p50 ms", "p99 ms", "ratio", "CPU svc/pg/gen/all %", "svc µs/req", "note"];
  const lines = rows.map((r) => [
    r.name,
    r.value === null ? "-" : `${r.value} ${r.unit}`,
    r.p50Ms === undefined ? "" : String(r.p50Ms),
    r.p99Ms === undefined ? "" : String(r.p99Ms),
    r.ratio ? `${r.ratio.value}x${r.ratio.target ? ` (target ${r.ratio.target})` : ""}` : "",
    r.cpu
      ? [
          r.cpu.shares.service ?? r.cpu.shares.echo ?? "-",
          r.cpu.shares.postgres ?? "-",
          r.cpu.loadgen,
          r.cpu.machine,
        ].join("/")
      : "",
    r.serverCpuUsPerRequest === undefined ? "" : String(r.serverCpuUsPerRequest),
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [fmt(header), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt)].join("\n");
}

async function main() {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const server = await startBenchServer();
  const runDatabase = `audit_bench_run_${randomBytes(4).toString("hex")}`;
  const writes = await openDatabase(server, runDatabase, 2);
  settleDatabase = () => vacuumAndCheckpoint(writes);
  const rssPids: number[] = [];
  const rss = watchRss(() => rssPids);
  let listData: Awaited<ReturnType<typeof ensureListData>> | undefined;
  try {
    console.log(`bench: ${ROUNDS} rounds of ${SECONDS} s, ${CORES} cores, load average ${loadBefore[0]?.toFixed(2)}`);
    if (selected("raw")) {
      console.log("1. raw postgres.js baseline");
      await rawBaseline(server, writes, !selected("batch"));
    }

    if (selected("batch") || selected("unary") || selected("http") || selected("vlog")) {
      const service = await startService(server.databaseUrl(runDatabase));
      rssPids.push(service.pid);
      try {
        if (selected("batch")) {
          console.log("2. BatchCreate");
          await batchCreate(server, service, writes);
        }
        if (selected("unary")) {
          console.log("3. unary Create vs bare echo");
          await unaryCreate(server, service, writes, server.databaseUrl(runDatabase));
        }
        if (selected("http")) {
          console.log("5. REST and legacy routes vs Connect JSON");
          await httpRoutes(server, service);
        }
        if (selected("vlog")) {
          console.log("6. the verifiable log on and off");
          await logCost(server, server.databaseUrl(runDatabase), `${runDatabase}_log_off`);
        }
      } finally {
        await service.stop();
      }
    }

    if (selected("list")) {
      console.log("4. List over the million-event tenant");
      const reads = await openDatabase(server, LIST_DATABASE, 2);
      try {
        listData = await ensureListData(reads);
        const listService = await startService(server.databaseUrl(LIST_DATABASE));
        rssPids.push(listService.pid);
        try {
          await listPages(server, listService, reads);
        } finally {
          await listService.stop();
        }
      } finally {
        await reads.close();
      }
    }
  } finally {
    rss.stop();
    await writes.close();
    await dropDatabase(server, runDatabase);
    await server.stop();
  }

  const maxRss = rss.max();
  const text = table();
  console.log(`\n${text}\n`);
  console.log(`service max RSS: ${maxRss} MiB (target < 300)`);
  console.log(
    `load average: ${loadBefore.map((l) => l.toFixed(2)).join(" ")} before, ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} after (1, 5, 15 min)`,
  );
  console.log(
    `List data: ${listData?.events} events (${listData?.loadedNow} loaded in this run, ${listData?.seconds} s)`,
  );
  console.log(
    "CPU: share of the machine's capacity (all cores) used by the service (or echo server), PostgreSQL, the load generator, and by every process",
  );
  const [pgVersion] = [process.env.DATABASE_URL ? "DATABASE_URL" : "embedded"];
  await mkdir("bench/results", { recursive: true });
  const file = `bench/results/bench-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`;
  await writeFile(
    file,
    `${JSON.stringify(
      {
        startedAt,
        machine: { cores: CORES, cpu: os.cpus()[0]?.model, loadBefore, loadAfter: os.loadavg(), node: process.version },
        postgres: pgVersion,
        settings: {
          seconds: SECONDS,
          rounds: ROUNDS,
          listEvents: LIST_EVENTS,
          loadgen: loadTool({ requests: [{}] } as LoadSpec),
        },
        serviceMaxRssMiB: maxRss,
        listData,
        rows,
        table: text,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`written to ${file}`);
}

await main();
