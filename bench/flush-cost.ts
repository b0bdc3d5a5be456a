/**
 * What one group-commit flush costs PostgreSQL: the backend's CPU (from /proc/<pid>/stat) per transaction and per
 * event of EventStore.appendEach, with the verifiable log (VERIFIABLE_LOG=false: without), realistic events of one
 * tenant, one connection, by events per flush (BENCH_SIZES, default 1,8,32,128). Rounds (BENCH_ROUNDS x
 * BENCH_SECONDS) are taken in turn across sizes. With BENCH_AGAINST=<another checkout of this repository, its
 * dependencies installed> that checkout's store runs on its own database in turn with this one, round by round, so
 * the two are compared under the same load. With pg_stat_statements loaded on the server, each statement's planning
 * and execution time per call follows (the extension counts wall time: on a loaded machine it includes waiting).
 *
 * Needs a PostgreSQL on this machine: DATABASE_URL, or the bench's embedded server. `npx tsx bench/flush-cost.ts`.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { systemClock } from "../src/clock.js";
import type { EventStore, GroupItem } from "../src/store/event-store.js";
import { newEventOf, realisticEvent, seededRandom } from "./support/fixtures.js";
import { dropDatabase, openDatabase, startBenchServer } from "./support/postgres.js";
import { cpuSeconds, median, round } from "./support/system.js";

const SIZES = (process.env.BENCH_SIZES ?? "1,8,32,128").split(",").map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const LOG = process.env.VERIFIABLE_LOG !== "false";
const checkouts = [path.resolve("."), ...(process.env.BENCH_AGAINST ? [path.resolve(process.env.BENCH_AGAINST)] : [])];

const server = await startBenchServer();
const random = seededRandom(16);
const events = Array.from({ length: 64 }, (_, i) => newEventOf(realisticEvent(i, random)));

interface Side {
  checkout: string;
  database: string;
  store: Pick<EventStore, "appendEach">;
  backend: number;
  close(): Promise<void>;
}

const sides: Side[] = [];
for (const checkout of checkouts) {
  // Each side's own store and verifiable log, loaded from its checkout, on its own database of the same server.
  const { EventStore } = await import(path.join(checkout, "src/store/event-store.ts"));
  const { TreeLog } = await import(path.join(checkout, "src/vlog/tree-log.ts"));
  const { eventLeafData } = await import(path.join(checkout, "src/vlog/leaf.ts"));
  const database = `audit_bench_flush_${randomBytes(4).toString("hex")}`;
  const db = await openDatabase(server, database, 1);
  const store = new EventStore(db.db, undefined, LOG ? new TreeLog(db.sql, eventLeafData) : undefined);
  const [row] = await db.sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  sides.push({ checkout, database, store, backend: row?.pid as number, close: () => db.close() });
}

let written = 0;
/** Flushes of `size` events for SECONDS: the backend's CPU µs per transaction and per event. */
async function round1(side: Side, size: number): Promise<{ tx: number; event: number }> {
  const before = cpuSeconds(side.backend);
  const deadline = performance.now() + SECONDS * 1000;
  let flushes = 0;
  while (performance.now() < deadline) {
    const items: GroupItem[] = Array.from({ length: size }, (_, i) => ({
      tenant: "flush-cost",
      event: events[(written + i) % events.length] as GroupItem["event"],
    }));
    written += size;
    await side.store.appendEach(items, systemClock);
    flushes++;
  }
  const us = (cpuSeconds(side.backend) - before) * 1e6;
  return { tx: us / flushes, event: us / (flushes * size) };
}

try {
  for (const side of sides) for (const size of SIZES) await round1(side, size);
  const results = new Map<string, { tx: number; event: number }[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const size of SIZES) {
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        const key = `${size}\t${side.checkout}`;
        results.set(key, [...(results.get(key) ?? []), await round1(side, size)]);
      }
    }
  }
  console.log(
    `PostgreSQL backend CPU, median of ${ROUNDS} rounds of ${SECONDS} s, verifiable log ${LOG ? "on" : "off"}`,
  );
  console.log("events a flush\tcheckout\tµs a flush\tµs an event\tµs an event, each round");
  for (const [key, values] of results) {
    const tx = round(median(values.map((v) => v.tx)), 0);
    const event = round(median(values.map((v) => v.event)), 1);
    console.log(`${key}\t${tx}\t${event}\t${values.map((v) => round(v.event, 0)).join(", ")}`);
  }
  await statementTimes();
} finally {
  for (const side of sides) await side.close();
  for (const side of sides) await dropDatabase(server, side.database);
  await server.stop();
}

/** Per statement, planning and execution µs per call over the whole run, from pg_stat_statements if loaded. */
async function statementTimes() {
  const db = await openDatabase(server, sides[0]?.database as string, 1);
  try {
    const [loaded] = await db.sql`select 1 from pg_available_extensions where name = 'pg_stat_statements'`;
    if (!loaded) return;
    await db.sql`create extension if not exists pg_stat_statements`;
    const rows = await db.sql<{ calls: string; plan: number; exec: number; query: string }[]>`
      select s.calls, s.total_plan_time * 1000 / s.calls as plan, s.total_exec_time * 1000 / s.calls as exec,
        left(regexp_replace(s.query, '[[:space:]]+', ' ', 'g'), 70) as query
      from pg_stat_statements s join pg_database d on d.oid = s.dbid
      where d.datname = any(${sides.map((s) => s.database)}::text[]) and s.calls > 100
      order by s.total_plan_time + s.total_exec_time desc limit 12`;
    console.log("\ncalls\tplan µs\texec µs\tstatement (pg_stat_statements, all checkouts and sizes)");
    for (const r of rows) console.log(`${r.calls}\t${round(r.plan, 0)}\t${round(r.exec, 0)}\t${r.query}`);
  } catch (error) {
    console.log(`pg_stat_statements not readable: ${(error as Error).message}`);
  } finally {
    await db.close();
  }
}
