/**
 * `npm run bench`: the service against the limits of its parts, measured in one run on one machine.
 *
 *   1. raw postgres.js into the same schema: 1000-row multi-row INSERT on 2 connections, and COPY (storage limit)
 *   2. BatchCreate over gRPC, 500-event batches, 4 concurrent callers, against (1)
 *   3. unary Create over gRPC, 64 concurrent streams, against a bare Connect echo server (framework limit)
 *   4. List, first and a later page of 100, tenant + 24 h window, with and without an actor filter, 1M events, at 1
 *      and 4 concurrent streams; CountEvents over the same windows in hourly buckets
 *   5. Create over REST and the Axonize legacy route against Connect JSON, HTTP/1.1
 *   6. BatchCreate and unary Create with the verifiable log on (the default, as in 2 and 3) against the same service
 *      with VERIFIABLE_LOG=false, in turn
 *
 * Each part runs for two workloads (BENCH_WORKLOADS=flat,realistic): the flat event of fixtures' sampleEvent, and the
 * realistic one of realisticEvent (nested attributes, random target ids, client times over 30 days, no ids, 3%
 * failures). Next to each rate the service's and PostgreSQL's CPU per event, call or page is printed: on a shared
 * machine CPU per unit is steadier than a rate. A summary checks the targets of docs/performance.md per workload.
 *
 * The service runs as production runs it, with `npm run start:prod`'s command (node with the production memory
 * settings on the build; built first when dist/ is stale); its RSS is reported over the run and per part.
 * PostgreSQL is DATABASE_URL's server or an embedded one kept in .data/bench.
 * Writes go to a fresh database that is dropped at the end; the List data set lives in `audit_bench_list` and is
 * loaded once (COPY, time-bounded, resumed by the next run if cut short). Each figure is the median of BENCH_ROUNDS runs of BENCH_SECONDS seconds.
 * Prints a table and writes everything to bench/results/bench-<time>.json.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { create, type DescMessage, type MessageInitShape, toBinary, toJson } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  BatchCreateRequestSchema,
  CountEventsRequestSchema,
  CreateRequestSchema,
  ListRequestSchema,
} from "../gen/audit/v1/audit_service_pb.js";
import { AuditEventSchema } from "../gen/audit/v1/event_pb.js";
import type { Database } from "../src/store/database.js";
import { pgTimestampMicros } from "../src/store/time.js";
import {
  ACTORS,
  copyLine,
  type EventInit,
  newEventOf,
  RAW_COLUMNS,
  rawRow,
  realisticEvent,
  sampleEvent,
  seededRandom,
} from "./support/fixtures.js";
import { grpcFrame, type LoadResult, type LoadSpec, loadTool, runLoad } from "./support/load.js";
import { type BenchServer, dropDatabase, openDatabase, startBenchServer } from "./support/postgres.js";
import { type CpuShares, measureCpu, median, round, rssSplitMiB, watchRss } from "./support/system.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LIST_EVENTS = Number(process.env.BENCH_LIST_EVENTS ?? 1_000_000);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 300);
const LIST_DATABASE = "audit_bench_list";
const LIST_DAYS = 10;
/**
 * Concurrent List streams: 1 is a reader's own latency; 4 keeps the single-threaded service busy, so its p99 adds the
 * wait behind the other three pages.
 */
const LIST_STREAMS = (process.env.BENCH_LIST_STREAMS ?? "1,8").split(",").map(Number);
const CORES = os.availableParallelism();
/**
 * BENCH_ONLY=raw,batch,unary,echo-ref,http,list,vlog runs only those parts (e.g. to profile one). `tracing` is never run
 * by default: BENCH_ONLY=unary,tracing adds unary Create with tracing on beside the usual rows, which run with it off.
 */
const ONLY = process.env.BENCH_ONLY?.split(",");
const selected = (part: string) => !ONLY || ONLY.includes(part);

/** The event a workload sends, and the tenant its List pages read. */
interface Workload {
  key: "flat" | "realistic";
  event(i: number): EventInit;
  listTenant: string;
}

const realisticRandom = seededRandom(16);
const WORKLOADS = (
  [
    { key: "flat", event: sampleEvent, listTenant: "bench-list" },
    { key: "realistic", event: (i) => realisticEvent(i, realisticRandom), listTenant: "bench-list-realistic" },
  ] satisfies Workload[] as Workload[]
).filter((w) => (process.env.BENCH_WORKLOADS ?? "flat,realistic").split(",").includes(w.key));

interface Row {
  workload: Workload["key"];
  /** Names the rows the targets summary reads. */
  key?: "raw-insert" | "batch" | "echo" | "create" | "list-page";
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
  /** CPU microseconds per unit of the rate (event, call or page) of the service (or echo) and of PostgreSQL. */
  cpuUs?: { per: "event" | "call" | "page"; server?: number; postgres?: number };
  /** List rows: concurrent streams. */
  streams?: number;
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

/** What `npm run build` compiles and copies into dist/: a newer file here means dist/ is stale. */
const BUILD_INPUTS = [
  "src",
  "gen",
  "drizzle",
  "scripts/app-role.sql",
  "scripts/build.mjs",
  "scripts/node.sh",
  "tsconfig.json",
  "tsconfig.build.json",
  "package-lock.json",
];

/** The newest modification time of a file or of anything under a folder; 0 if absent. */
function newest(file: string): number {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(file).map((name) => newest(path.join(file, name))));
}

const SERVICE_ENTRY = "dist/src/main.js";

/**
 * `npm run start:prod`'s command, read from package.json so that the bench measures what production runs: the
 * launcher with the production memory settings (scripts/node.sh) on the built entry. Spawned without a shell.
 */
const START_PROD = (JSON.parse(readFileSync("package.json", "utf8")).scripts["start:prod"] as string).split(/\s+/);

/** Builds the service as production does (`npm run build`) when dist/ is missing or older than a source. */
function ensureBuild() {
  const built = newest(SERVICE_ENTRY);
  if (built > 0 && built >= Math.max(...BUILD_INPUTS.map(newest))) return;
  console.log("building the service (npm run build): dist/ is missing or older than its sources");
  execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" });
}

/** Every service process the bench started, for the RSS watch; its URL answers /metrics. */
const services: Service[] = [];

/**
 * The service as `npm run start:prod` runs it (built by `ensureBuild`), on the bench's own node, in its own process
 * (the launcher execs node, so the child's pid is the service's), on a database of the bench server.
 */
async function startService(databaseUrl: string, env: Record<string, string> = {}): Promise<Service> {
  const port = await freePort();
  const profile = process.env.BENCH_CPU_PROF ? ["--cpu-prof", "--cpu-prof-dir=bench/results/profiles"] : [];
  const [command = "", ...args] = START_PROD;
  const child = spawn(command, args, {
    env: {
      ...process.env,
      NODE: process.execPath,
      NODE_OPTIONS: [process.env.NODE_OPTIONS, ...profile].filter(Boolean).join(" "),
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
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error("the service did not become ready in 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const service = { pid: child.pid as number, url, stop: () => stopChild(child) };
  services.push(service);
  return service;
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

/** PostgreSQL's processes when the bench runs it; with DATABASE_URL they are not ours to see. */
const pgGroup = (server: BenchServer): Record<string, () => number[]> => ({ postgres: server.pids });

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
  const used = cpu.used.service ?? cpu.used.echo;
  if (used === undefined || requests === 0) return undefined;
  return round((used * 1e6) / requests, 0);
}

/** The service's (or echo's) and PostgreSQL's CPU microseconds per unit, from a round that did `units` of them. */
function cpuPer(per: "event" | "call" | "page", cpu: CpuShares, units: number): Row["cpuUs"] {
  if (units === 0) return undefined;
  const us = (seconds: number | undefined) => (seconds === undefined ? undefined : round((seconds * 1e6) / units, 1));
  return { per, server: us(cpu.used.service ?? cpu.used.echo), postgres: us(cpu.used.postgres) };
}

/**
 * Calls in flight when the load generator stops are still committed: let them land before counting, so they are
 * counted with the run that sent them.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1000));

/**
 * Events stored for the tenants so far: their last sequences, which are gapless. Runs inside the measured rounds, so
 * it must cost PostgreSQL nothing worth counting (a count(*) over the growing table cost more than the rows).
 */
async function count(db: Database, tenants: string[]): Promise<number> {
  const [row] = await db.sql<{ n: string }[]>`
    select coalesce(sum(last_sequence), 0) as n from tenant_sequences where tenant = any(${tenants}::text[])`;
  return Number(row?.n ?? 0);
}

// 1. Storage limit ------------------------------------------------------------------------------------------------

/** Raw rounds so far: each writes its own tenants, whichever writer runs it. */
let rawRuns = 0;

/** One round of raw postgres.js writes (2 connections, 1000 rows a statement), by INSERT or by COPY. */
function rawWriters(db: Database, workload: Workload) {
  const templates = Array.from({ length: 1000 }, (_, i) => newEventOf(workload.event(i)));
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
    return {
      value: total / ((performance.now() - started) / 1000),
      units: total,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
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

function rawRowOf(
  workload: Workload,
  name: string,
  measured: Measured<{ value: number; units: number }>,
  note?: string,
): Row {
  return {
    workload: workload.key,
    key: name.startsWith("raw INSERT") ? "raw-insert" : undefined,
    name,
    value: round(measured.result.value, 0),
    unit: "events/s",
    cpu: measured.cpu,
    cpuUs: cpuPer("event", measured.cpu, measured.result.units),
    rounds: measured.values.map((v) => round(v, 0)),
    note,
  };
}

/** The storage limit. With BatchCreate selected, raw INSERT is measured there instead, in turn with it. */
async function rawBaseline(server: BenchServer, db: Database, workload: Workload, withInsert: boolean) {
  const raw = rawWriters(db, workload);
  if (withInsert) {
    const insert = await rounds(pgGroup(server), raw.insert);
    rows.push(
      rawRowOf(workload, "raw INSERT, 1000 rows x 2 connections", insert, "the bench process is the load generator"),
    );
  }
  rows.push(rawRowOf(workload, "raw COPY, 1000 rows x 2 connections", await rounds(pgGroup(server), raw.copy)));
}

// 2, 3, 5. Writes through the service -----------------------------------------------------------------------------

async function load(spec: Omit<LoadSpec, "seconds">, seconds = SECONDS): Promise<LoadResult> {
  const result = await runLoad({ ...spec, seconds });
  if (result.failed > 0)
    throw new Error(`${spec.url}: ${result.failed} requests failed: ${result.failures.join("; ")}`);
  return result;
}

/**
 * Warms `spec` up, then measures it in ROUNDS rounds with the CPU of `pids`; the round kept is the median by rate
 * (`perSecond`) or by latency (`p99Ms`).
 */
async function measureLoad(
  pids: Record<string, () => number[]>,
  spec: Omit<LoadSpec, "seconds">,
  by: "perSecond" | "p99Ms",
  warmSeconds = 2,
): Promise<Measured<LoadResult & { value: number }>> {
  await load(spec, warmSeconds);
  return rounds(pids, async () => {
    const result = await load(spec);
    return { ...result, value: result[by] };
  });
}

/** A table row for a measured load of calls or pages: rate, latencies, CPU shares and CPU per unit. */
function loadRow(
  workload: Workload,
  name: string,
  measured: Measured<LoadResult & { value: number }>,
  per: "call" | "page",
  extra: Partial<Row> = {},
): Row {
  return {
    workload: workload.key,
    name,
    value: measured.result.perSecond,
    unit: "req/s",
    p50Ms: measured.result.p50Ms,
    p99Ms: measured.result.p99Ms,
    cpu: measured.cpu,
    serverCpuUsPerRequest: serverCpuUs(measured.cpu, measured.result.ok),
    cpuUs: cpuPer(per, measured.cpu, measured.result.ok),
    tool: measured.result.tool,
    rounds: measured.values,
    ...extra,
  };
}

/** BatchCreate load: one caller per tenant, each sending 500 of the workload's events a request. */
function batchCreateSpec(service: Service, tenants: string[], keys: Map<string, string>, workload: Workload) {
  return {
    url: `${service.url}/audit.v1.AuditService/BatchCreate`,
    http1: false,
    grpc: true,
    requests: tenants.map((tenant, t) => ({
      headers: grpcHeaders(keys.get(tenant) as string),
      body: grpcBody(BatchCreateRequestSchema, {
        tenant,
        events: Array.from({ length: 500 }, (_, i) => workload.event(t * 500 + i)),
      }),
    })),
    connections: 4,
    streamsPerConnection: 1,
  };
}

async function batchCreate(server: BenchServer, service: Service, db: Database, workload: Workload) {
  const tenants = [0, 1, 2, 3].map((i) => `bench-batch-${workload.key}-${i}`);
  const keys = await provision(service, tenants);
  const spec = batchCreateSpec(service, tenants, keys, workload);
  await load(spec, 2);
  await settle();
  // Raw INSERT and BatchCreate in turn, so the ratio compares them on the same machine, database and table size.
  const [raw, measured] = await interleavedRounds<
    { value: number; units: number; cpuSeconds: number } & Partial<LoadResult>
  >([
    { pids: pgGroup(server), once: rawWriters(db, workload).insert },
    {
      pids: { service: () => [service.pid], ...pgGroup(server) },
      once: async () => {
        const before = await count(db, tenants);
        const result = await load(spec);
        await settle();
        const stored = (await count(db, tenants)) - before;
        if (stored < result.ok * 500 || stored > (result.ok + 4) * 500) {
          throw new Error(`BatchCreate: ${stored} stored, ${result.ok * 500} acknowledged`);
        }
        return { ...result, value: (result.ok * 500) / result.seconds, units: stored };
      },
    },
  ]);
  if (!raw || !measured) throw new Error("interleaved rounds returned too few results");
  const rawName = "raw INSERT, 1000 rows x 2 connections";
  rows.push(rawRowOf(workload, rawName, raw, "in turn with BatchCreate; the bench process is the load generator"));
  const ratios = measured.values.map((v, i) => v / (raw.values[i] as number));
  rows.push({
    workload: workload.key,
    key: "batch",
    name: "BatchCreate gRPC, 500 events x 4 callers",
    value: round(measured.result.value, 0),
    unit: "events/s",
    p50Ms: measured.result.p50Ms,
    p99Ms: measured.result.p99Ms,
    ratio: { to: rawName, value: round(median(ratios), 2), target: 0.7 },
    cpu: measured.cpu,
    serverCpuUsPerRequest: serverCpuUs(measured.cpu, measured.result.ok ?? 0),
    cpuUs: cpuPer("event", measured.cpu, measured.result.units),
    tool: measured.result.tool,
    rounds: measured.values.map((v) => round(v, 0)),
    note: `one tenant per caller; ratio per round ${ratios.map((r) => round(r, 2)).join(", ")}`,
  });
}

async function unaryCreate(
  server: BenchServer,
  service: Service,
  db: Database,
  databaseUrl: string,
  workload: Workload,
) {
  const tenant = `bench-unary-${workload.key}`;
  const body = grpcBody(CreateRequestSchema, { tenant, event: workload.event(7) });
  const headers = grpcHeaders((await provision(service, [tenant])).get(tenant) as string);
  const spec = (url: string) => ({
    url: `${url}/audit.v1.AuditService/Create`,
    http1: false,
    grpc: true,
    requests: [{ headers, body }],
    connections: 4,
    streamsPerConnection: 16,
  });
  const echoRound = (echo: Service) => async () => {
    const result = await load(spec(echo.url));
    return { ...result, value: result.perSecond };
  };
  const createRound = (target: Service) => async () => {
    const before = await count(db, [tenant]);
    const result = await load(spec(target.url));
    await settle();
    const stored = (await count(db, [tenant])) - before;
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
      const main = name.startsWith("Create");
      rows.push(
        loadRow(workload, "bare Connect echo, 64 streams, in turn with the row below", bare, "call", {
          key: main ? "echo" : undefined,
        }),
        loadRow(workload, name, measured, "call", {
          key: main ? "create" : undefined,
          ratio: { to: "the echo rounds taken in turn", value: round(median(ratios), 2), target: 1.5 },
          note: `ratio per round ${ratios.map((r) => round(r, 2)).join(", ")}`,
        }),
      );
    } finally {
      await echo.stop();
    }
  };
  await againstEcho(service, "Create gRPC, 64 streams (group commit)");
  // The references measure the framework and a configuration, not the event: once, with the first workload.
  if (selected("echo-ref") && workload === WORKLOADS[0]) {
    for (const { mode, name } of [
      { mode: "node-http2", name: "reference: node:http2 gRPC-shaped echo" },
      { mode: "grpc-js", name: "reference: @grpc/grpc-js echo" },
    ] as const) {
      const echo = await startEcho(mode);
      try {
        rows.push(
          loadRow(workload, name, await measureLoad({ echo: () => [echo.pid] }, spec(echo.url), "perSecond"), "call"),
        );
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
  if (ONLY?.includes("tracing") && workload === WORKLOADS[0]) {
    // The same service with tracing on (a server span and its store spans per call, exported over OTLP), measured in
    // turn with the one above, which runs without OTEL_* variables: the pair is what tracing costs when on, and the
    // off row against the bare echo above is what being able to trace costs when off.
    const sink = await startOtlpSink();
    const traced = await startService(databaseUrl, {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    });
    try {
      await load(spec(traced.url), 2);
      await settle();
      const [off, on] = (await interleavedRounds([
        { pids: { service: () => [service.pid], ...pgGroup(server) }, once: createRound(service) },
        { pids: { service: () => [traced.pid], ...pgGroup(server) }, once: createRound(traced) },
      ])) as [Measured<LoadResult & { value: number }>, Measured<LoadResult & { value: number }>];
      const ratios = on.values.map((v, i) => v / (off.values[i] as number));
      rows.push(
        loadRow(workload, "Create gRPC, tracing off (no OTEL_*), in turn with the row below", off, "call"),
        loadRow(workload, "Create gRPC, tracing on, every span exported over OTLP", on, "call", {
          ratio: { to: "tracing off, per round", value: round(median(ratios), 2) },
          note: `ratio per round ${ratios.map((r) => round(r, 2)).join(", ")}`,
        }),
      );
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
async function logCost(server: BenchServer, databaseUrl: string, offDatabase: string, workload: Workload) {
  const on = await startService(databaseUrl);
  const offDb = await openDatabase(server, offDatabase, 1);
  const off = await startService(server.databaseUrl(offDatabase), { VERIFIABLE_LOG: "false" });
  try {
    const shapes = [
      {
        name: "BatchCreate gRPC, 500 events x 4 callers",
        path: "BatchCreate",
        perCall: 500,
        tenants: [0, 1, 2, 3].map((i) => `vlog-batch-${workload.key}-${i}`),
        body: (tenant: string) =>
          grpcBody(BatchCreateRequestSchema, {
            tenant,
            events: Array.from({ length: 500 }, (_, i) => workload.event(i)),
          }),
        connections: 4,
        streams: 1,
      },
      {
        name: "Create gRPC, 64 streams (group commit)",
        path: "Create",
        perCall: 1,
        tenants: [`vlog-unary-${workload.key}`],
        body: (tenant: string) => grpcBody(CreateRequestSchema, { tenant, event: workload.event(7) }),
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
        workload: workload.key,
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

async function httpRoutes(server: BenchServer, service: Service, workload: Workload) {
  const tenant = `bench-http-${workload.key}`;
  const event = toJson(AuditEventSchema, create(AuditEventSchema, workload.event(11)));
  const routes: { name: string; path: string; headers: Record<string, string>; body: unknown }[] = [
    {
      name: "Create Connect JSON, HTTP/1.1, 64 connections",
      path: "/audit.v1.AuditService/Create",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: { tenant, event },
    },
    {
      name: "Create REST, HTTP/1.1, 64 connections",
      path: `/v1/tenants/${tenant}/events`,
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
  const authorization = (await provision(service, [tenant])).get(tenant) as string;
  let connectJson: number | undefined;
  for (const route of routes) {
    const headers = { ...route.headers, authorization };
    const body = Buffer.from(JSON.stringify(route.body));
    const probe = await fetch(`${service.url}${route.path}`, { method: "POST", headers, body });
    const text = await probe.text();
    if (!probe.ok) {
      rows.push({
        workload: workload.key,
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
    const measured = await measureLoad({ service: () => [service.pid], ...pgGroup(server) }, spec, "perSecond");
    connectJson ??= measured.result.perSecond;
    rows.push(
      loadRow(workload, route.name, measured, "call", {
        ratio: { to: routes[0]?.name as string, value: round(measured.result.perSecond / connectJson, 2) },
      }),
    );
  }
}

// 4. Reads over a million events -----------------------------------------------------------------------------------

/**
 * Tops the List tenant up to LIST_EVENTS with COPY, spread over LIST_DAYS days ending now, for at most LOAD_SECONDS.
 * A run cut short leaves a consistent prefix that the next run continues.
 */
async function ensureListData(
  db: Database,
  workload: Workload,
): Promise<{ tenant: string; events: number; loadedNow: number; seconds: number }> {
  const tenant = workload.listTenant;
  const [state] = await db.sql<{ n: string; top: string | null }[]>`
    select count(*) as n, max(sequence) as top from events where tenant = ${tenant}`;
  let have = Number(state?.n ?? 0);
  const started = performance.now();
  const startHave = have;
  if (have < LIST_EVENTS) {
    console.log(`loading List data of ${tenant}: ${have} of ${LIST_EVENTS} events present, at most ${LOAD_SECONDS} s`);
    // Spread over LIST_DAYS by sequence, whatever time the event itself names.
    const templates = Array.from({ length: 1000 }, (_, i) => ({
      ...newEventOf(workload.event(i)),
      occurredAt: undefined,
    }));
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
        const row = rawRow(tenant, sequence, templates[sequence % 1000] as (typeof templates)[number], at);
        lines.push(copyLine({ ...row, actor_id: `user-${sequence % ACTORS}` }));
      }
      await new Promise<void>((resolve, reject) => {
        stream.on("error", reject);
        stream.on("finish", resolve);
        stream.end(lines.join(""));
      });
      have += n;
      await db.sql`
        insert into tenant_sequences (tenant, last_sequence) values (${tenant}, ${have})
        on conflict (tenant) do update set last_sequence = excluded.last_sequence`;
    }
    await db.sql`analyze events`;
  }
  return { tenant, events: have, loadedNow: have - startHave, seconds: round((performance.now() - started) / 1000) };
}

async function listPages(server: BenchServer, service: Service, db: Database, workload: Workload) {
  const tenant = workload.listTenant;
  const pids = { service: () => [service.pid], ...pgGroup(server) };
  const authorization = (await provision(service, [tenant])).get(tenant) as string;
  const [bounds] = await db.sql<{ top: string }[]>`
    select max(occurred_at) as top from events where tenant = ${tenant}`;
  const endMs = Number(pgTimestampMicros(bounds?.top as string) / 1000n) + 1;
  const window = { startTime: timestampFromMs(endMs - 86_400_000), endTime: timestampFromMs(endMs) };
  const queries = [
    { name: "24 h window", filter: {} },
    { name: "24 h window + actor", filter: { actorId: "user-42" } },
  ];
  for (const query of queries) {
    const request = { tenant, pageSize: 100, ...window, ...query.filter };
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
        const measured = await measureLoad(pids, spec, "p99Ms", 1);
        const name = `List ${query.name}, ${label} of 100, ${streams} stream${streams === 1 ? "" : "s"}`;
        rows.push(loadRow(workload, name, measured, "page", { key: "list-page", streams, note: "rounds are p99 ms" }));
      }
    }
    // CountEvents over the same window in 24 buckets of an hour: it reads every event of the window, where a page
    // of List reads 100.
    const count = { tenant, filter: { ...window, ...query.filter }, bucketWidth: { seconds: 3600n } };
    const spec = {
      url: `${service.url}/audit.v1.AuditService/CountEvents`,
      http1: false,
      grpc: true,
      requests: [{ headers: grpcHeaders(authorization), body: grpcBody(CountEventsRequestSchema, count) }],
      connections: 1,
      streamsPerConnection: 1,
    };
    const measured = await measureLoad(pids, spec, "p99Ms", 1);
    const name = `CountEvents ${query.name}, 24 buckets of 1 h, 1 stream`;
    rows.push(loadRow(workload, name, measured, "call", { streams: 1, note: "rounds are p99 ms" }));
  }
}

// 6. Cost growth (BENCH_GROWTH=<events>, not in CI) -------------------------------------------------------------------

const GROWTH = Number(process.env.BENCH_GROWTH ?? 0);
const GROWTH_DATABASE = "audit_bench_growth";
const GROWTH_TENANTS = 100;
/** Distinct realistic events the bulk is copied from, SQL-side, tenant by tenant. */
const GROWTH_SEED = 10_000;
/** The tenant List reads in both phases: the same 100,000 events, whatever the table around them holds. */
const GROWTH_LIST_EVENTS = 100_000;

interface GrowthPhase {
  events: number;
  batch: Measured<{ value: number; units: number; cpuSeconds: number }>;
  list: Measured<LoadResult & { value: number }>;
}

/**
 * BatchCreate and List on a nearly empty table, then again once GROWTH events across 100 tenants are in it: ingest
 * must stay at 0.9x or more, List's p99 must not grow. The bulk is copied SQL-side from GROWTH_SEED realistic events,
 * with fresh ids and occurred_at spread over a year. Also reports disk use per million events, table and each index.
 * The database is made afresh each run and dropped at the end.
 */
async function costGrowth(server: BenchServer) {
  const workload = WORKLOADS.find((w) => w.key === "realistic") ?? (WORKLOADS[0] as Workload);
  await dropDatabase(server, GROWTH_DATABASE);
  const db = await openDatabase(server, GROWTH_DATABASE, CORES + 1);
  try {
    await copyEvents(db, workload, "growth-list", GROWTH_LIST_EVENTS, 10);
    await copyEvents(db, workload, "growth-seed", GROWTH_SEED, 365);
    await db.sql`analyze events`;
    const phases: GrowthPhase[] = [await growthPhase(server, db, workload)];
    const started = performance.now();
    const { loaded, seconds: loadSteps } = await growthBulk(db);
    const loadSeconds = round((performance.now() - started) / 1000);
    phases.push(await growthPhase(server, db, workload));
    const [empty, full] = phases as [GrowthPhase, GrowthPhase];
    const batchRatio = round(full.batch.result.value / empty.batch.result.value, 2);
    // On a shared machine the rates follow the neighbours; the CPU an event costs (service and PostgreSQL) does not:
    // empty-table CPU per event over full-table CPU per event is the ingest the full table allows, relative.
    const cpuPerEvent = (phase: GrowthPhase) => {
      const used = (phase.batch.cpu.used.service ?? 0) + (phase.batch.cpu.used.postgres ?? 0);
      return phase.batch.result.units === 0 ? Number.NaN : used / phase.batch.result.units;
    };
    const cpuRatio = round(cpuPerEvent(empty) / cpuPerEvent(full), 2);
    for (const [phase, label] of [
      [empty, "nearly empty"],
      [full, "full"],
    ] as const) {
      rows.push(
        {
          workload: workload.key,
          name: `growth: BatchCreate, ${label} table (${phase.events} events)`,
          value: round(phase.batch.result.value, 0),
          unit: "events/s",
          ratio: phase === full ? { to: "the nearly empty table", value: batchRatio, target: 0.9 } : undefined,
          note: phase === full ? `CPU per event, empty ÷ full: ${cpuRatio}x (target ≥ 0.9)` : undefined,
          cpu: phase.batch.cpu,
          cpuUs: cpuPer("event", phase.batch.cpu, phase.batch.result.units),
          rounds: phase.batch.values.map((v) => round(v, 0)),
        },
        loadRow(workload, `growth: List 24 h window, page 1 of 100, 8 streams, ${label} table`, phase.list, "page", {
          note: "rounds are p99 ms",
        }),
      );
    }
    const disk = await diskPerMillion(db);
    const steps = Object.entries(loadSteps)
      .map(([step, s]) => `${step} ${s} s`)
      .join(", ");
    console.log(`\ncost growth: ${loaded} events copied in ${loadSeconds} s (${steps}); ${full.events} in the table`);
    console.log(
      `BatchCreate full/empty: rate ${batchRatio}x, CPU per event ${cpuRatio}x (target ≥ 0.9); List p99 ${empty.list.result.p99Ms} -> ${full.list.result.p99Ms} ms`,
    );
    console.log(markdown(["relation", "MiB per million events", "GiB per year at 1,000 events/s"], disk));
    return { loaded, loadSeconds, loadSteps, events: full.events, batchRatio, cpuRatio, disk };
  } finally {
    await db.close();
    await dropDatabase(server, GROWTH_DATABASE);
  }
}

/** `count` events of the workload into a new tenant by COPY, occurred_at spread over the last `days`. */
async function copyEvents(db: Database, workload: Workload, tenant: string, count: number, days: number) {
  const templates = Array.from({ length: 1000 }, (_, i) => ({
    ...newEventOf(workload.event(i)),
    occurredAt: undefined,
  }));
  const end = BigInt(Date.now()) * 1000n;
  const span = BigInt(days) * 86_400_000_000n;
  for (let from = 0; from < count; from += 20_000) {
    const lines: string[] = [];
    for (let sequence = from + 1; sequence <= Math.min(count, from + 20_000); sequence++) {
      const at = end - span + (span * BigInt(sequence)) / BigInt(count);
      lines.push(copyLine(rawRow(tenant, sequence, templates[sequence % 1000] as (typeof templates)[number], at)));
    }
    const stream = await db.sql`copy events (${db.sql.unsafe(RAW_COLUMNS.join(", "))}) from stdin`.writable();
    await new Promise<void>((resolve, reject) => {
      stream.on("error", reject);
      stream.on("finish", resolve);
      stream.end(lines.join(""));
    });
  }
  await db.sql`
    insert into tenant_sequences (tenant, last_sequence) values (${tenant}, ${count})
    on conflict (tenant) do update set last_sequence = excluded.last_sequence`;
}

/**
 * Copies the seed tenant's events SQL-side into GROWTH_TENANTS tenants until the table holds GROWTH events, the way
 * a bulk load is done: the indexes (and the constraints that own them) are dropped, the rows inserted by
 * `insert ... select` over generate_series on one connection per core, and the indexes built again from their own
 * definitions, so the table ends with the schema's indexes. Each tenant gets sequences 1..n with fresh ids; the
 * content of event n is seed event n mod GROWTH_SEED; occurred_at follows the sequence over a year. Rows are
 * inserted in sequence order with the tenants interleaved, so a heap page holds events of many tenants, as one that
 * ingest filled in time order does. The Tail trigger is off during the copy (nobody listens, and its transition table
 * would hold every row of a statement).
 */
async function growthBulk(db: Database): Promise<{ loaded: number; seconds: Record<string, number> }> {
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, step: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await step();
    seconds[name] = round((performance.now() - started) / 1000);
    console.log(`growth: ${name} in ${seconds[name]} s`);
    return result;
  };
  const perTenant = Math.ceil(Math.max(0, GROWTH - (await tableEvents(db))) / GROWTH_TENANTS);
  if (perTenant === 0) return { loaded: 0, seconds };
  // Every column but the four each copy sets, by the schema: a column added to events is copied from the seed.
  const columns = RAW_COLUMNS.filter((c) => !["tenant", "sequence", "id", "occurred_at"].includes(c));
  const list = db.sql.unsafe(columns.join(", "));
  const seedList = db.sql.unsafe(columns.map((c) => `seed.${c}`).join(", "));
  const indexes = await db.sql<{ name: string; definition: string; constraint: string | null }[]>`
    select c.relname as name, pg_get_indexdef(i.indexrelid) as definition, pg_get_constraintdef(k.oid) as constraint
    from pg_index i
    join pg_class c on c.oid = i.indexrelid
    left join pg_constraint k on k.conindid = i.indexrelid and k.conrelid = i.indrelid
    where i.indrelid = 'events'::regclass`;
  const connections = await Promise.all(
    Array.from({ length: CORES }, async () => {
      const connection = await db.sql.reserve();
      await connection`set statement_timeout = 0`;
      await connection`set maintenance_work_mem = '1GB'`;
      return connection;
    }),
  );
  const first = connections[0] as (typeof connections)[number];
  try {
    await timed("indexes dropped", async () => {
      await first`alter table events disable trigger user`;
      for (const index of indexes) {
        if (index.constraint) await first`alter table events drop constraint ${first(index.name)}`;
        else await first`drop index ${first(index.name)}`;
      }
    });
    // Chunks of sequences (each for every tenant), enough of them to keep every connection busy.
    const chunk = Math.max(1000, Math.min(10_000, Math.ceil(perTenant / (CORES * 4))));
    const yearSeconds = 365 * 86_400;
    const startSeconds = Date.now() / 1000 - yearSeconds;
    let next = 1;
    await timed(`${perTenant * GROWTH_TENANTS} events inserted`, () =>
      Promise.all(
        connections.map(async (connection) => {
          for (let from = next; from <= perTenant; from = next) {
            next = from + chunk;
            const to = Math.min(perTenant, from + chunk - 1);
            await connection`
              insert into events (tenant, sequence, id, occurred_at, ${list})
              select 'growth-' || t, s, gen_random_uuid()::text,
                to_timestamp(${startSeconds}::float8 + s * ${yearSeconds / perTenant}::float8) + t * interval '1 second',
                ${seedList}
              from generate_series(${from}::bigint, ${to}::bigint) as s
              cross join generate_series(0, ${GROWTH_TENANTS - 1}) as t
              join (select * from events where tenant = 'growth-seed') as seed
                on seed.sequence = (s - 1) % ${GROWTH_SEED} + 1
              order by s, t`;
            console.log(`growth: sequences ${from}-${to} of ${perTenant} copied into ${GROWTH_TENANTS} tenants`);
          }
        }),
      ),
    );
    await timed("indexes built", async () => {
      for (const index of indexes) {
        if (index.constraint)
          await first`alter table events add constraint ${first(index.name)} ${first.unsafe(index.constraint)}`;
        else await first.unsafe(index.definition);
      }
      await first`alter table events enable trigger user`;
    });
    await first`
      insert into tenant_sequences (tenant, last_sequence)
      select 'growth-' || t, ${perTenant} from generate_series(0, ${GROWTH_TENANTS - 1}) as t
      on conflict (tenant) do update set last_sequence = excluded.last_sequence`;
    await timed("vacuumed", () => first`vacuum (analyze) events`);
  } finally {
    for (const connection of connections) connection.release();
  }
  return { loaded: perTenant * GROWTH_TENANTS, seconds };
}

async function tableEvents(db: Database): Promise<number> {
  const [row] = await db.sql<{ n: string }[]>`select sum(last_sequence) as n from tenant_sequences`;
  return Number(row?.n ?? 0);
}

/** BatchCreate (4 callers, 500 realistic events each) and List (8 streams) on the table as it is now. */
async function growthPhase(server: BenchServer, db: Database, workload: Workload): Promise<GrowthPhase> {
  const events = await tableEvents(db);
  // The verifiable log is off in both phases: the events copied SQL-side have no log, and a service with it on would
  // first build the trees of all of them as it starts, one event at a time. What the log costs an append does not
  // depend on the events table's size; BENCH_ONLY=vlog measures it.
  const service = await startService(server.databaseUrl(GROWTH_DATABASE), { VERIFIABLE_LOG: "false" });
  try {
    const tenants = [0, 1, 2, 3].map((i) => `growth-batch-${i}`);
    const keys = await provision(service, [...tenants, "growth-list"]);
    const batchSpec = batchCreateSpec(service, tenants, keys, workload);
    await load(batchSpec, 2);
    const batch = await rounds({ service: () => [service.pid], ...pgGroup(server) }, async () => {
      const before = await count(db, tenants);
      const result = await load(batchSpec);
      await settle();
      const stored = (await count(db, tenants)) - before;
      return { value: stored / result.seconds, units: stored, cpuSeconds: result.cpuSeconds };
    });
    const [bounds] = await db.sql<{ top: string }[]>`
      select max(occurred_at) as top from events where tenant = 'growth-list'`;
    const endMs = Number(pgTimestampMicros(bounds?.top as string) / 1000n) + 1;
    const request = {
      tenant: "growth-list",
      pageSize: 100,
      startTime: timestampFromMs(endMs - 86_400_000),
      endTime: timestampFromMs(endMs),
    };
    const listSpec = {
      url: `${service.url}/audit.v1.AuditService/List`,
      http1: false,
      grpc: true,
      requests: [
        { headers: grpcHeaders(keys.get("growth-list") as string), body: grpcBody(ListRequestSchema, request) },
      ],
      connections: 1,
      streamsPerConnection: 8,
    };
    const list = await measureLoad({ service: () => [service.pid], ...pgGroup(server) }, listSpec, "p99Ms", 1);
    return { events, batch, list };
  } finally {
    await service.stop();
  }
}

/** The events table and each of its indexes, in MiB per million events and GiB per year at 1,000 events/s. */
async function diskPerMillion(db: Database): Promise<string[][]> {
  const [{ n } = { n: "0" }] = await db.sql<{ n: string }[]>`select count(*) as n from events`;
  const relations = await db.sql<{ name: string; bytes: string }[]>`
    select 'events (heap, TOAST, maps)' as name, pg_table_size('events') as bytes
    union all
    select c.relname, pg_relation_size(c.oid)
    from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid = 'events'::regclass
    union all
    select 'total', pg_total_relation_size('events')`;
  const millions = Number(n) / 1e6;
  const perYear = (365 * 86_400 * 1000) / 1e6;
  return relations.map((r) => {
    const perMillion = Number(r.bytes) / 2 ** 20 / millions;
    return [r.name, String(round(perMillion, 1)), String(round((perMillion * perYear) / 1024, 0))];
  });
}

// Report ------------------------------------------------------------------------------------------------------------

function table(): string {
  const header = [
    "workload",
    "measurement",
    "value",
    "p50 ms",
    "p99 ms",
    "ratio",
    "CPU svc/pg/gen/all %",
    "svc µs",
    "pg µs",
    "per",
    "note",
  ];
  const lines = rows.map((r) => [
    r.workload,
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
    String(r.cpuUs?.server ?? ""),
    String(r.cpuUs?.postgres ?? ""),
    r.cpuUs?.per ?? "",
    r.note ?? "",
  ]);
  return markdown(header, lines);
}

function markdown(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  return [fmt(header), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt)].join("\n");
}

/** The targets of docs/performance.md, per workload, from this run's rows. */
function targets(maxRss: number): string {
  const span = (values: (number | undefined)[]) => {
    const known = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (known.length === 0) return "-";
    const [lo, hi] = [Math.min(...known), Math.max(...known)];
    return lo === hi ? String(round(lo, 2)) : `${round(lo, 2)}–${round(hi, 2)}`;
  };
  const header = ["metric", "target", ...WORKLOADS.map((w) => w.key)];
  const per = (f: (of: (key: Row["key"]) => Row[]) => (number | undefined)[]) =>
    WORKLOADS.map((w) => span(f((key) => rows.filter((r) => r.workload === w.key && r.key === key))));
  const lines = [
    ["BatchCreate ÷ raw multi-row INSERT", "≥ 0.7x", ...per((of) => of("batch").map((r) => r.ratio?.value))],
    [
      "PostgreSQL CPU/event, BatchCreate ÷ raw INSERT",
      "≤ 1.3x",
      ...per((of) =>
        of("batch").map((b) => {
          const raw = of("raw-insert")[0]?.cpuUs?.postgres;
          return b.cpuUs?.postgres && raw ? b.cpuUs.postgres / raw : undefined;
        }),
      ),
    ],
    ["service CPU/event in BatchCreate, µs", "≤ 40", ...per((of) => of("batch").map((r) => r.cpuUs?.server))],
    ["unary Create ÷ bare Connect echo", "≥ 1.5x", ...per((of) => of("create").map((r) => r.ratio?.value))],
    [
      "Create p99 ÷ echo p99, 64 streams",
      "≤ 1.2x",
      ...per((of) => of("create").map((r) => (r.p99Ms ?? 0) / (of("echo")[0]?.p99Ms ?? Number.NaN))),
    ],
    ["List: service CPU/page, µs", "≤ 1500", ...per((of) => of("list-page").map((r) => r.cpuUs?.server))],
    [
      `List pages/s at ${Math.max(...LIST_STREAMS)} streams`,
      "≥ 700",
      ...per((of) =>
        of("list-page")
          .filter((r) => r.streams === Math.max(...LIST_STREAMS))
          .map((r) => r.value ?? undefined),
      ),
    ],
    ["service max RSS, MiB (whole run)", "≤ 200", ...WORKLOADS.map(() => String(maxRss))],
  ];
  return markdown(header, lines);
}

/** What a service's memory was made of when a part's RSS peak was sampled. */
interface MemoryAtPeak {
  rssMiB: number;
  anonMiB?: number;
  fileMiB?: number;
  heapUsedMiB?: number;
  heapTotalMiB?: number;
  externalMiB?: number;
  /** V8 heap spaces' sizes (MiB), by space. */
  heapSpacesMiB?: Record<string, number>;
}

/** Each part's memory at its highest RSS sample. */
const peaks = new Map<string, MemoryAtPeak>();
let peakReading = false;

/**
 * Reads a service's memory when a part's RSS rises to a new high: /proc's anonymous and file-backed split, and the
 * V8 heap and external memory from the service's own /metrics (prom-client's process and nodejs families). One
 * reading at a time, and only when the peak grew by 4 MiB or more, so the readings cost the measured service nothing
 * worth counting.
 */
function memoryAtPeak(service: Service, mib: number, part: string) {
  const last = peaks.get(part);
  if (peakReading || (last && mib < last.rssMiB + 4)) return;
  peakReading = true;
  const split = rssSplitMiB(service.pid);
  fetch(`${service.url}/metrics`)
    .then((r) => (r.ok ? r.text() : ""))
    .then((text) => {
      const mibOf = (name: string) => {
        const match = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
        return match ? round(Number(match[1]) / 2 ** 20) : undefined;
      };
      const spaces = [...text.matchAll(/^nodejs_heap_space_size_total_bytes\{space="([^"]+)"\} (\S+)$/gm)];
      peaks.set(part, {
        rssMiB: round(mib),
        anonMiB: split?.anon,
        fileMiB: split?.file,
        heapUsedMiB: mibOf("nodejs_heap_size_used_bytes"),
        heapTotalMiB: mibOf("nodejs_heap_size_total_bytes"),
        externalMiB: mibOf("nodejs_external_memory_bytes"),
        heapSpacesMiB: Object.fromEntries(spaces.map((m) => [m[1], round(Number(m[2]) / 2 ** 20)])),
      });
    })
    .catch(() => peaks.set(part, { rssMiB: round(mib), anonMiB: split?.anon, fileMiB: split?.file }))
    .finally(() => {
      peakReading = false;
    });
}

async function main() {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const server = await startBenchServer();
  const runDatabase = `audit_bench_run_${randomBytes(4).toString("hex")}`;
  const writes = await openDatabase(server, runDatabase, 2);
  settleDatabase = () => vacuumAndCheckpoint(writes);
  if (["batch", "unary", "http", "vlog", "list"].some(selected) || GROWTH > 0) ensureBuild();
  const rss = watchRss(
    () => services.map((s) => s.pid),
    (pid, mib, part) => {
      const service = services.find((s) => s.pid === pid);
      if (service) memoryAtPeak(service, mib, part);
    },
  );
  const listData: Awaited<ReturnType<typeof ensureListData>>[] = [];
  let growth: Awaited<ReturnType<typeof costGrowth>> | undefined;
  try {
    console.log(`bench: ${ROUNDS} rounds of ${SECONDS} s, ${CORES} cores, load average ${loadBefore[0]?.toFixed(2)}`);
    if (selected("raw")) {
      for (const workload of WORKLOADS) {
        console.log(`1. raw postgres.js baseline, ${workload.key} event`);
        await rawBaseline(server, writes, workload, !selected("batch"));
      }
    }

    if (selected("batch") || selected("unary") || selected("http") || selected("vlog")) {
      rss.part("start");
      const service = await startService(server.databaseUrl(runDatabase));
      try {
        for (const workload of WORKLOADS) {
          if (selected("batch")) {
            rss.part(`batch ${workload.key}`);
            console.log(`2. BatchCreate, ${workload.key} event`);
            await batchCreate(server, service, writes, workload);
          }
          if (selected("unary")) {
            rss.part(`unary ${workload.key}`);
            console.log(`3. unary Create vs bare echo, ${workload.key} event`);
            await unaryCreate(server, service, writes, server.databaseUrl(runDatabase), workload);
          }
          if (selected("http")) {
            rss.part(`http ${workload.key}`);
            console.log(`5. REST and legacy routes vs Connect JSON, ${workload.key} event`);
            await httpRoutes(server, service, workload);
          }
          if (selected("vlog")) {
            rss.part(`vlog ${workload.key}`);
            console.log(`6. the verifiable log on and off, ${workload.key} event`);
            await logCost(server, server.databaseUrl(runDatabase), `${runDatabase}_log_off`, workload);
          }
        }
      } finally {
        await service.stop();
      }
    }

    if (selected("list")) {
      console.log("4. List over the million-event tenant");
      const reads = await openDatabase(server, LIST_DATABASE, 2);
      try {
        for (const workload of WORKLOADS) listData.push(await ensureListData(reads, workload));
        rss.part("start");
        // The List data set outlives a run and may have been loaded from another checkout, whose data directory holds
        // the key its verifiable log is signed with; a service with the log on refuses to start without that key.
        // Reads do not touch the log, so the List service runs without it.
        const listService = await startService(server.databaseUrl(LIST_DATABASE), { VERIFIABLE_LOG: "false" });
        try {
          for (const workload of WORKLOADS) {
            rss.part(`list ${workload.key}`);
            await listPages(server, listService, reads, workload);
          }
        } finally {
          await listService.stop();
        }
      } finally {
        await reads.close();
      }
    }
    if (GROWTH > 0) {
      console.log(`6. cost growth to ${GROWTH} events across ${GROWTH_TENANTS} tenants`);
      rss.part("growth");
      growth = await costGrowth(server);
    }
  } finally {
    rss.stop();
    await writes.close();
    await dropDatabase(server, runDatabase);
    await server.stop();
  }

  const maxRss = rss.max();
  const text = table();
  const summary = targets(maxRss);
  console.log(`\n${text}\n\n${summary}\n`);
  console.log(`service max RSS: ${maxRss} MiB (target ≤ 200), built service (${START_PROD.join(" ")})`);
  const rssParts = rss.parts();
  console.log(
    markdown(
      ["part", "max RSS MiB", "at its peak: anon / file-backed MiB", "V8 heap used / total MiB", "external MiB"],
      Object.entries(rssParts).map(([part, mib]) => {
        const at = peaks.get(part);
        return [
          part,
          String(mib),
          at ? `${at.anonMiB} / ${at.fileMiB}` : "",
          at ? `${at.heapUsedMiB} / ${at.heapTotalMiB}` : "",
          at ? String(at.externalMiB) : "",
        ];
      }),
    ),
  );
  console.log(
    `load average: ${loadBefore.map((l) => l.toFixed(2)).join(" ")} before, ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} after (1, 5, 15 min)`,
  );
  for (const data of listData) {
    console.log(
      `List data of ${data.tenant}: ${data.events} events (${data.loadedNow} loaded in this run, ${data.seconds} s)`,
    );
  }
  console.log(
    "CPU: share of the machine's capacity (all cores) used by the service (or echo server), PostgreSQL, the load generator, and by every process; svc µs and pg µs: CPU microseconds per event, call or page",
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
        serviceRss: { parts: rssParts, atPeak: Object.fromEntries(peaks) },
        listData,
        growth,
        rows,
        table: text,
        targets: summary,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`written to ${file}`);
}

await main();
