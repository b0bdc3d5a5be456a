/**
 * Which way of shipping a 500-event batch to PostgreSQL makes BatchCreate fastest? Runs the store's append statement
 * with its input as one json parameter (what the service uses), as unnest() over one array per column, as a
 * multi-row VALUES list, and from a temporary table filled by COPY; the service's whole transaction (lock the
 * tenant, read the clock, the json statement); a plain multi-row INSERT with no checks; and the transaction the store
 * used before (lock, select, drizzle multi-row INSERT, update). Each variant: 4 concurrent callers, one tenant each,
 * on a fresh database. `npx tsx bench/write-paths.ts`; BENCH_SECONDS sets each variant's length, BENCH_ONLY=<text>
 * runs the variants whose name contains it.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { and, sql as dsql, eq } from "drizzle-orm";
import type postgres from "postgres";
import { systemClock } from "../src/clock.js";
import type { Database } from "../src/store/database.js";
import {
  appendStatement,
  EventStore,
  INPUT_COLUMNS,
  type InputRow,
  inputRow,
  jsonInput,
  type NewEvent,
} from "../src/store/event-store.js";
import { events, tenantSequences } from "../src/store/schema.js";
import { rawRow, sampleNewEvent } from "./support/fixtures.js";
import { dropDatabase, openDatabase, startBenchServer } from "./support/postgres.js";
import { round } from "./support/system.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const CALLERS = 4;
const BATCH = 500;

/** Every input column with its SQL type, as the store's json input declares them. */
const COLUMNS = INPUT_COLUMNS.map(({ key, type }) => [key, type] as const);

/** A row's values as text, the form unnest(text[]), an untyped VALUES list and COPY all carry. */
function asText(row: InputRow): (string | null)[] {
  return COLUMNS.map(([name]) => {
    const v = row[name];
    if (v === null) return null;
    if (name === "actorRoles") return `{${(v as string[]).map((r) => `"${r.replace(/["\\]/g, "\\$&")}"`).join(",")}}`;
    if (name === "request" || name === "attributes") return JSON.stringify(v);
    return String(v);
  });
}

/** Casts text columns named c0..c24 to the input's types. */
function typed(sql: postgres.Sql, source: postgres.PendingQuery<postgres.Row[]>) {
  const list = COLUMNS.map(([name, type], i) => `c${i}::${type} as "${name}"`).join(", ");
  return sql`select ${sql.unsafe(list)} from (${source}) as x(${sql.unsafe(COLUMNS.map((_, i) => `c${i}`).join(", "))})`;
}

type Variant = (db: Database, tenant: string, batch: NewEvent[], receivedMicros: bigint) => Promise<unknown>;

const variants: Record<string, (db: Database) => Variant> = {
  "service: lock, then the json statement": (db) => {
    const store = new EventStore(db.db);
    return (_db, tenant, batch) => store.append(tenant, batch, systemClock);
  },
  json_to_recordset: () => (db, tenant, batch, received) => {
    const rows = batch.map((event, ord) => inputRow({ tenant, event }, ord, received));
    return appendStatement(db.sql, jsonInput(db.sql, rows), true);
  },
  "json, short keys": () => (db, tenant, batch, received) => {
    const rows = batch.map((event, ord) => {
      const row = inputRow({ tenant, event }, ord, received);
      return Object.fromEntries(COLUMNS.map(([name], i) => [`c${i}`, row[name]]));
    });
    const defs = COLUMNS.map(([, type], i) => `c${i} ${type}`).join(", ");
    const names = COLUMNS.map(([name], i) => `c${i} as "${name}"`).join(", ");
    return appendStatement(
      db.sql,
      db.sql`select ${db.sql.unsafe(names)} from json_to_recordset(${JSON.stringify(rows)}::json) as x(${db.sql.unsafe(defs)})`,
      true,
    );
  },
  "raw multi-row INSERT, no checks": () => {
    let sequence = 0;
    return (db, tenant, batch, received) => {
      const rows = batch.map((event) => rawRow(tenant, ++sequence, event, received));
      return db.sql`insert into events ${db.sql(rows)}`;
    };
  },
  "unnest(text[] per column)": () => (db, tenant, batch, received) => {
    const rows = batch.map((event, ord) => asText(inputRow({ tenant, event }, ord, received)));
    const arrays = COLUMNS.map((_, i) => rows.map((r) => r[i] ?? null));
    const params = arrays.map((a) => db.sql`${a as string[]}::text[]`);
    const list = params.flatMap((p, i) => (i === 0 ? [p] : [db.sql`,`, p]));
    return appendStatement(db.sql, typed(db.sql, db.sql`select * from unnest(${list})`), true);
  },
  "multi-row VALUES": () => (db, tenant, batch, received) => {
    const rows = batch.map((event, ord) => asText(inputRow({ tenant, event }, ord, received)));
    return appendStatement(db.sql, typed(db.sql, db.sql`values ${db.sql(rows as string[][])}`), true);
  },
  "COPY into a temp table": () => (db, tenant, batch, received) =>
    db.sql.begin(async (tx) => {
      const columns = COLUMNS.map((_, i) => `c${i} text`).join(", ");
      await tx`create temp table if not exists bench_input (${tx.unsafe(columns)}) on commit delete rows`;
      const stream = await tx`copy bench_input from stdin`.writable();
      for (const [ord, event] of batch.entries()) {
        const values = asText(inputRow({ tenant, event }, ord, received));
        stream.write(`${values.map((v) => (v === null ? "\\N" : copyEscape(v))).join("\t")}\n`);
      }
      await new Promise<void>((resolve, reject) =>
        stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
      );
      return appendStatement(
        tx as unknown as postgres.Sql,
        typed(tx as unknown as postgres.Sql, tx`select * from bench_input`),
        true,
      );
    }),
  "before: drizzle transaction (lock, select, insert, update)": () => (db, tenant, batch, received) =>
    db.db.transaction(async (tx) => {
      const [lock] = await tx
        .insert(tenantSequences)
        .values({ tenant, lastSequence: 0 })
        .onConflictDoUpdate({
          target: tenantSequences.tenant,
          set: { lastSequence: dsql`${tenantSequences.lastSequence}` },
        })
        .returning({ last: tenantSequences.lastSequence });
      let last = lock?.last ?? 0;
      const rows = batch.map((event, ord) => inputRow({ tenant, event }, ord, received));
      await tx
        .select({ id: events.id })
        .from(events)
        .where(and(eq(events.tenant, tenant), dsql`${events.id} = any(${dsql.param(rows.map((r) => r.id))}::text[])`));
      await tx.insert(events).values(
        batch.map((event, i) => ({
          ...event,
          id: rows[i]?.id as string,
          tenant,
          sequence: ++last,
          receivedAt: rows[i]?.receivedAt as string,
          occurredAt: rows[i]?.occurredAt as string,
        })),
      );
      await tx.update(tenantSequences).set({ lastSequence: last }).where(eq(tenantSequences.tenant, tenant));
    }),
};

function copyEscape(text: string): string {
  return text.replace(/[\\\t\n\r]/g, (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c] as string);
}

async function main() {
  const server = await startBenchServer();
  const name = `audit_bench_paths_${randomBytes(4).toString("hex")}`;
  const db = await openDatabase(server, name, CALLERS);
  const templates = Array.from({ length: BATCH }, (_, i) => sampleNewEvent(i, 0n));
  const results: Record<string, number> = {};
  try {
    const only = process.env.BENCH_ONLY;
    for (const [label, make] of Object.entries(variants)) {
      if (only && !label.includes(only)) continue;
      const run = make(db);
      const tenant = `paths-${Object.keys(results).length}`;
      const deadline = performance.now() + SECONDS * 1000;
      const started = performance.now();
      let stored = 0;
      await Promise.all(
        Array.from({ length: CALLERS }, async (_, caller) => {
          while (performance.now() < deadline) {
            const micros = BigInt(Date.now()) * 1000n;
            await run(db, `${tenant}-${caller}`, templates, micros);
            stored += BATCH;
          }
        }),
      );
      const [check] = await db.sql<
        { n: string }[]
      >`select count(*) as n from events where tenant like ${`${tenant}-%`}`;
      if (Number(check?.n) !== stored) throw new Error(`${label}: ${check?.n} rows stored, ${stored} acknowledged`);
      results[label] = round(stored / ((performance.now() - started) / 1000), 0);
      console.log(`${label.padEnd(36)} ${String(results[label]).padStart(8)} events/s`);
    }
    await mkdir("bench/results", { recursive: true });
    const file = `bench/results/write-paths-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
    await writeFile(
      file,
      `${JSON.stringify({ seconds: SECONDS, callers: CALLERS, batch: BATCH, results }, null, 2)}\n`,
    );
    console.log(`written to ${file}`);
  } finally {
    await db.close();
    await dropDatabase(server, name);
    await server.stop();
  }
}

await main();
