/**
 * The service's own CPU per event in BatchCreate, without the server: the request's bytes decoded as the direct gRPC
 * path decodes them, the BatchCreate handler over an EventStore with the verifiable log (a real PostgreSQL, as the
 * service runs), the reply encoded and copied as the gRPC envelope copies it. What it leaves out is HTTP/2, the
 * interceptors and the load generator, which the bench's BatchCreate rows include.
 *
 * Two checkouts side by side in one process, timed in turn (A B, B A, ...), each with a database of its own:
 *
 *   BATCH_CPU_BASE=<another checkout, with node_modules> DATABASE_URL=postgres://... npx tsx --expose-gc bench/batch-cpu.ts
 *
 * Without BATCH_CPU_BASE only this checkout is timed. BATCH_CPU_ROUNDS (30) rounds of BATCH_CPU_BATCHES (4)
 * 500-event batches per side and workload; collection forced before each step. Prints, per workload, each side's
 * median CPU (user + system, process.cpuUsage) per event and the median of the per-round ratios.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { createContextValues, type HandlerContext } from "@connectrpc/connect";
import postgres from "postgres";
import { BatchCreateRequestSchema } from "../gen/audit/v1/audit_service_pb.js";
import { type EventInit, realisticEvent, sampleEvent, seededRandom } from "./support/fixtures.js";

const BATCH = 500;
const ROUNDS = Number(process.env.BATCH_CPU_ROUNDS ?? 30);
const BATCHES = Number(process.env.BATCH_CPU_BATCHES ?? 4);
const url = process.env.DATABASE_URL;
if (!url) throw new Error("DATABASE_URL is required");
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc (npx tsx --expose-gc bench/batch-cpu.ts)");

type Batch = (bytes: Uint8Array, tenant: string) => Promise<number>;

interface Side {
  name: string;
  run: Batch;
  close(): Promise<void>;
}

const here = path.resolve(import.meta.dirname, "..");
const roots = [{ name: "this", root: here }];
if (process.env.BATCH_CPU_BASE) roots.unshift({ name: "base", root: path.resolve(process.env.BATCH_CPU_BASE) });

const admin = postgres(url, { max: 1, onnotice: () => {} });
const databases: string[] = [];

/** The BatchCreate path of the checkout at `root`, on a fresh database of its own. */
async function side(name: string, root: string): Promise<Side> {
  const load = (file: string) => import(pathToFileURL(path.join(root, file)).href);
  const [{ connectDatabase }, { EventStore }, { TreeLog }, { eventLeafData }, service, context, reader, writer, proto] =
    await Promise.all([
      load("src/store/database.ts"),
      load("src/store/event-store.ts"),
      load("src/vlog/tree-log.ts"),
      load("src/vlog/leaf.ts"),
      load("src/service/audit-service.ts"),
      load("src/service/call-context.ts"),
      load("src/codec/event-binary-reader.ts"),
      load("src/codec/event-binary-writer.ts"),
      load("gen/audit/v1/audit_service_pb.ts"),
    ]);
  const database = `batch_cpu_${name}_${randomBytes(3).toString("hex")}`;
  await admin`create database ${admin(database)}`;
  databases.push(database);
  const dbUrl = new URL(url as string);
  dbUrl.pathname = `/${database}`;
  const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent };
  const db = await connectDatabase(dbUrl.href, { poolSize: 4, statementTimeoutMs: 30_000, logger: silent });
  const store = new EventStore(db.db, undefined, new TreeLog(db.sql, eventLeafData));
  const clock = { now: () => new Date(), nowMicros: () => BigInt(Date.now()) * 1000n };
  // BatchCreate uses only the store and the clock.
  const audit = service.createAuditService({ store, clock } as never);
  const decode = reader.eventMessageDecoder(proto.BatchCreateRequestSchema);
  const encode = writer.eventMessageEncoder(proto.BatchCreateResponseSchema);
  return {
    name,
    async run(bytes, tenant) {
      const values = createContextValues();
      values.set(context.kTraceId, "");
      const request = decode(bytes);
      const response = await audit.batchCreate({ ...request, tenant }, { values } as unknown as HandlerContext);
      return Buffer.from(encode(response)).length;
    },
    close: () => db.close(),
  };
}

function batches(event: (i: number) => EventInit, count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, b) =>
    toBinary(
      BatchCreateRequestSchema,
      create(BatchCreateRequestSchema, {
        tenant: "t",
        events: Array.from({ length: BATCH }, (_, i) => event(b * BATCH + i)),
      }),
    ),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main() {
  const sides: Side[] = [];
  for (const { name, root } of roots) sides.push(await side(name, root));
  const random = seededRandom(16);
  const workloads = {
    realistic: batches((i) => realisticEvent(i, random), 8),
    flat: batches(sampleEvent, 8),
  };
  try {
    for (const [workload, requests] of Object.entries(workloads)) {
      let n = 0;
      const step = async (s: Side) => {
        gc?.();
        const start = process.cpuUsage();
        for (let b = 0; b < BATCHES; b++) await s.run(requests[n++ % requests.length] as Uint8Array, `t${b % 4}`);
        const used = process.cpuUsage(start);
        return (used.user + used.system) / (BATCHES * BATCH);
      };
      for (const s of sides) await step(s); // warm-up
      const perEvent = new Map<string, number[]>(sides.map((s) => [s.name, []]));
      const ratios: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? sides : [...sides].reverse();
        const got = new Map<string, number>();
        for (const s of order) got.set(s.name, await step(s));
        for (const [name, us] of got) perEvent.get(name)?.push(us);
        if (sides.length === 2) ratios.push((got.get("this") as number) / (got.get("base") as number));
      }
      const line = sides.map((s) => `${s.name} ${median(perEvent.get(s.name) as number[]).toFixed(1)} µs`).join(", ");
      const rounds = sides
        .map((s) => `${s.name}: ${(perEvent.get(s.name) as number[]).map((x) => x.toFixed(1)).join(" ")}`)
        .join("; ");
      const ratio = ratios.length > 0 ? `, this/base ${median(ratios).toFixed(2)}` : "";
      console.log(`${workload}: ${line} per event${ratio}  (rounds ${rounds})`);
    }
  } finally {
    for (const s of sides) await s.close();
    for (const database of databases) await admin`drop database if exists ${admin(database)} with (force)`;
    await admin.end();
  }
}

await main();
