/**
 * Where a List page's CPU goes, in Node and in PostgreSQL: the store's List statement (first page of 100, tenant + 24 h
 * window, newest first, as `npm run bench` reads it) run on one connection in variants that each leave one step out,
 * the variants interleaved in rounds. Node's CPU is process.cpuUsage() around each round; PostgreSQL's is the CPU of
 * the connection's backend from /proc (only when the server runs on this machine). Reads the bench's List data set
 * (`audit_bench_list`, loaded by `BENCH_ONLY=list npm run bench`; BENCH_LIST_DATABASE names another with the same
 * tenants) and writes nothing. `npx tsx bench/list-page.ts`; BENCH_ROUNDS (7) rounds of BENCH_PAGES (300) pages.
 */
import { readFileSync } from "node:fs";
import { ListResponseSchema } from "../gen/audit/v1/audit_service_pb.js";
import { eventMessageEncoder } from "../src/codec/event-binary-writer.js";
import { createLogger } from "../src/logger.js";
import { rowToEvent } from "../src/service/event-output.js";
import { connectDatabase } from "../src/store/database.js";
import { type EventRow, EventStore, type ListQuery } from "../src/store/event-store.js";
import { pgTimestampMicros } from "../src/store/time.js";
import { everyEvent } from "../test/support/events.js";
import { startBenchServer } from "./support/postgres.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const PAGES = Number(process.env.BENCH_PAGES ?? 300);
const DATABASE = process.env.BENCH_LIST_DATABASE ?? "audit_bench_list";
const TENANTS = { flat: "bench-list", realistic: "bench-list-realistic" };

/** utime + stime of a process, in microseconds (clock ticks of 10 ms), or NaN when it is not on this machine. */
function processMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

async function main() {
  const server = await startBenchServer();
  const database = await connectDatabase(server.databaseUrl(DATABASE), {
    poolSize: 1,
    statementTimeoutMs: 60_000,
    logger: createLogger("warn"),
  });
  const { sql } = database;
  const store = new EventStore(database.db);
  const encode = eventMessageEncoder(ListResponseSchema);
  if (!encode) throw new Error("ListResponse has no hand-made encoder");
  const lines: string[] = [];
  try {
    const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const pid = backend?.pid as number;
    for (const [workload, tenant] of Object.entries(TENANTS)) {
      const [bounds] = await sql<{ top: string | null }[]>`
        select max(occurred_at) as top from events where tenant = ${tenant}`;
      if (!bounds?.top) {
        console.log(`${DATABASE} has no events of ${tenant}: run BENCH_ONLY=list npm run bench first`);
        continue;
      }
      const end = pgTimestampMicros(bounds.top) + 1n;
      const iso = (micros: bigint) => new Date(Number(micros / 1000n)).toISOString();
      const q: ListQuery = {
        tenant,
        limit: 101,
        newestFirst: true,
        nowMicros: BigInt(Date.now()) * 1000n,
        startTime: iso(end - 86_400_000_000n),
        endTime: iso(end),
        ...everyEvent,
        includeChildren: false,
      };
      const { sql: text, params } = store.listQuery(q).toSQL();
      const run = (statement: string) => sql.unsafe(statement, params as never[], { prepare: true });
      const withoutJsonb = text.replace('"request" as', "null as").replace('"attributes" as', "null as");
      const onlySequence = text.replace(/^select .* from "events"/, 'select "sequence" from "events"');
      // The timestamps as exact integers (epoch microseconds) in place of PostgreSQL's text.
      const epochMicros = text
        .replace('"occurred_at" as', '(extract(epoch from "occurred_at") * 1000000)::int8 as')
        .replace('"received_at" as', '(extract(epoch from "received_at") * 1000000)::int8 as');
      if (withoutJsonb === text || onlySequence === text || epochMicros === text) {
        throw new Error(`unexpected List statement: ${text}`);
      }
      const jsonbText = (column: { type: number; parser?: unknown }) => (column.type === 3802 ? null : column.parser);
      const variants: [string, () => Promise<unknown>][] = [
        ["the statement selecting only `sequence` (the query's fixed cost)", () => run(onlySequence)],
        ["without `request` and `attributes`", () => run(withoutJsonb)],
        ["every column, `request` and `attributes` left as text", () => run(text).parsers(jsonbText as never)],
        [
          "the same, `occurred_at` and `received_at` as epoch microseconds",
          () => run(epochMicros).parsers(jsonbText as never),
        ],
        ["`EventStore.list` (every column, the jsonb ones parsed)", () => store.list(q)],
        [
          "`EventStore.list`, `rowToEvent`, the `ListResponse` encoded and copied into a gRPC frame",
          async () => {
            const rows: EventRow[] = await store.list(q);
            const bytes = (encode as NonNullable<typeof encode>)({
              $typeName: "audit.v1.ListResponse",
              events: rows.slice(0, 100).map(rowToEvent),
              nextPageToken: "",
            } as never);
            const frame = new Uint8Array(5 + bytes.byteLength);
            frame.set(bytes, 5);
          },
        ],
        ["`EventStore.list` with a generic plan (`plan_cache_mode = auto`)", () => store.list(q)],
      ];
      const node = variants.map((): number[] => []);
      const postgres = variants.map((): number[] => []);
      for (let round = -1; round < ROUNDS; round++) {
        for (const [i, [name, variant]] of variants.entries()) {
          const generic = name.includes("generic plan");
          if (generic) await sql`set plan_cache_mode = auto`;
          // A round -1 warms each variant up (and lets the generic plan be chosen after its five custom ones).
          const pages = round < 0 ? 50 : PAGES;
          const pg0 = processMicros(pid);
          const cpu0 = process.cpuUsage();
          for (let page = 0; page < pages; page++) await variant();
          const cpu = process.cpuUsage(cpu0);
          const pg = processMicros(pid) - pg0;
          if (generic) await sql`set plan_cache_mode = force_custom_plan`;
          if (round < 0) continue;
          (node[i] as number[]).push((cpu.user + cpu.system) / pages);
          (postgres[i] as number[]).push(pg / pages);
        }
      }
      lines.push(`\n${workload} (${tenant}), µs per page, medians of ${ROUNDS} rounds of ${PAGES} pages:\n`);
      lines.push("| variant | Node | PostgreSQL |", "|---|---|---|");
      for (const [i, [name]] of variants.entries()) {
        const pg = median(postgres[i] as number[]);
        lines.push(
          `| ${name} | ${Math.round(median(node[i] as number[]))} | ${Number.isNaN(pg) ? "-" : Math.round(pg)} |`,
        );
      }
    }
    console.log(lines.join("\n"));
  } finally {
    await database.close();
    await server.stop();
  }
}

await main();
