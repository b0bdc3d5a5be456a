import { and, asc, desc, eq, getTableColumns, gt, is, lte, SQL, sql } from "drizzle-orm";
import { PgArray, type PgColumn } from "drizzle-orm/pg-core";
import type postgres from "postgres";
import type { Clock } from "../clock.js";
import { CONNECT_TIMEOUT_SECONDS, type Db } from "./database.js";
import {
  type CompiledFilter,
  type Condition,
  compileFilter,
  conditionParams,
  type EventFilter,
  filterSql,
} from "./event-filter.js";
import { noObserver, type StoreObserver } from "./observer.js";
import { events, tenantSequences } from "./schema.js";
import { microsToIso } from "./time.js";
import { uuidv7 } from "./uuid.js";

export type EventRow = Omit<typeof events.$inferSelect, "contentHash">;

/** A validated event ready to insert; tenant, sequence and received_at are assigned on commit. */
export type NewEvent = Omit<typeof events.$inferInsert, "tenant" | "sequence" | "receivedAt" | "occurredAt"> & {
  id: string;
  /** Defaults to received_at. */
  occurredAt: string | undefined;
  contentHash: Buffer;
  /** Sets expires_at to received_at plus this many minutes; received_at is only known on commit. */
  ttlMinutes?: number;
};

export type AppendResult =
  | { ok: true; events: EventRow[] }
  /** An id already stored with other content; nothing of the batch was written. */
  | { ok: false; conflictIndex: number; id: string };

/** One event of a group commit, with the tenant of its own call. */
export interface GroupItem {
  tenant: string;
  event: NewEvent;
}

/** What became of one event: newly stored, already stored with the same content, or refused as a conflict. */
export type ItemOutcome =
  | { kind: "stored"; row: EventRow }
  | { kind: "replayed"; row: EventRow }
  | { kind: "conflict"; id: string }
  /** Not written because another event of an all-or-nothing batch conflicted. */
  | { kind: "skipped" };

export interface ListQuery extends EventFilter {
  tenant: string;
  limit: number;
  newestFirst: boolean;
  /** Keyset cursor: rows strictly after this (occurred_at, sequence) in the listing order. */
  after?: { occurredAt: string; sequence: number };
  /** What "now" is for activeOnly. */
  nowMicros: bigint;
}

/** CountEvents: the events a filter selects, counted per bucket of `widthSeconds` (aligned to the epoch) and outcome. */
export interface CountQuery extends EventFilter {
  tenant: string;
  widthSeconds: bigint;
  nowMicros: bigint;
}

/** One bucket's events of one outcome; `bucketSeconds` is the bucket's start, in seconds since the epoch. */
export interface CountRow {
  bucketSeconds: number;
  outcomeStatus: number;
  count: number;
}

/** A tenant's rows after a sequence, in sequence order: Tail's replay and its live reads. */
export interface RangeQuery {
  tenant: string;
  afterSequence: number;
  /** Inclusive upper bound; none reads to the end. */
  throughSequence?: number;
  filter?: CompiledFilter;
  nowMicros: bigint;
  limit: number;
}

/**
 * A step of every append transaction after its statement and before COMMIT, given the rows the statement stores (all
 * tenants, input order); it sends the COMMIT itself, pipelined with its own last statement. When the store knows the
 * stored rows before the statement's answer (every event fresh), it calls this with the statement still in flight, so
 * statement, step and COMMIT travel together. The verifiable log (src/vlog/tree-log.ts) is one: its tree advances in
 * the transaction that stores the events.
 */
export interface AppendLog {
  commit(tx: postgres.ReservedSql, stored: EventRow[]): Promise<void>;
}

/** SQLSTATEs after which running the same transaction again can succeed: deadlock, serialization failure. */
const RETRYABLE = new Set(["40P01", "40001"]);
const ATTEMPTS = 3;

export class EventStore {
  private readonly sql: postgres.Sql;
  /** List's statement text by listShape. */
  private readonly listTexts = new Map<string, string>();

  constructor(
    private readonly db: Db,
    private readonly observer: StoreObserver = noObserver,
    private readonly log?: AppendLog,
  ) {
    // The postgres.js client under drizzle: the append statement and List run on it directly (see each).
    this.sql = (db as Db & { $client: postgres.Sql }).$client;
  }

  /**
   * Appends a tenant's events in one transaction: all are stored, or none. Ids already stored with the same content
   * resolve to the stored event (idempotent replay); with other content the whole call is refused.
   */
  async append(tenant: string, batch: NewEvent[], clock: Clock): Promise<AppendResult> {
    const outcomes = await this.write(
      batch.map((event) => ({ tenant, event })),
      true,
      clock,
    );
    const conflictIndex = outcomes.findIndex((o) => o.kind === "conflict");
    const conflict = outcomes[conflictIndex];
    if (conflict?.kind === "conflict") return { ok: false, conflictIndex, id: conflict.id };
    const events = outcomes.map((o) => {
      if (o.kind === "skipped" || o.kind === "conflict") throw new Error("an all-or-nothing batch was split");
      return o.row;
    });
    return { ok: true, events };
  }

  /**
   * Appends events of any tenants in one transaction, each on its own: a conflict refuses only its own event. The
   * group commit's flush. (tenant, id) must be unique within `items`.
   */
  appendEach(items: GroupItem[], clock: Clock): Promise<ItemOutcome[]> {
    return this.write(items, false, clock);
  }

  /**
   * One transaction: lock the tenants' tenant_sequences rows (upserted, in tenant order so two writers cannot
   * deadlock), read the clock, then one statement checks ids, inserts and advances the sequences (appendStatement).
   * Writers of one tenant, on any instance, so commit one after another: sequences come out gapless in commit order,
   * the id check cannot race a concurrent insert, and received_at (read with the locks held) never goes backwards as
   * sequences go up.
   *
   * Two round trips on a reserved connection: BEGIN travels with the lock, COMMIT with the statement (after a failed
   * statement PostgreSQL answers that COMMIT with a rollback).
   *
   * To notify listeners per tenant on commit, add `pg_notify(...)` to the RETURNING list of the statement's
   * `sequences`: it runs once per tenant that got new events, inside this transaction.
   */
  private write(items: GroupItem[], atomic: boolean, clock: Clock): Promise<ItemOutcome[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.observer.operation("append", items.length, async () => {
      const outcomes = await this.transaction(items, atomic, clock);
      const stored = new Map<string, number>();
      for (const [index, outcome] of outcomes.entries()) {
        const tenant = (items[index] as GroupItem).tenant;
        if (outcome.kind === "stored") stored.set(tenant, (stored.get(tenant) ?? 0) + 1);
      }
      for (const [tenant, count] of stored) this.observer.stored(tenant, count);
      return outcomes;
    });
  }

  private async transaction(items: GroupItem[], atomic: boolean, clock: Clock): Promise<ItemOutcome[]> {
    const tenants = [...new Set(items.map((item) => item.tenant))].sort();
    for (let attempt = 1; ; attempt++) {
      const tx = await reserveConnection(this.sql);
      try {
        const [, , locked] = await Promise.all([
          tx`begin`,
          // The connection plans every run for its values, for List (database.ts). Nothing this transaction runs
          // (the lock, the append statement, the verifiable log's function) has a plan that depends on them, and
          // planning them again cost PostgreSQL about as much per transaction as storing ten events
          // (docs/performance.md, "What a flush costs PostgreSQL"): plan them once per connection.
          tx`set local plan_cache_mode = force_generic_plan`,
          tx<{ tenant: string; last: string }[]>`
            insert into tenant_sequences (tenant, last_sequence)
            select tenant, 0 from unnest(${tenants}::text[]) as tenant order by tenant
            on conflict (tenant) do update set last_sequence = tenant_sequences.last_sequence
            returning tenant, last_sequence as last
          `,
        ]);
        const receivedMicros = clock.nowMicros();
        const rows = items.map((item, ord) => inputRow(item, ord, receivedMicros));
        const last = new Map(locked.map((r) => [r.tenant, Number(r.last)]));
        return await this.finish(tx, appendStatement(tx, jsonInput(tx, rows), atomic), rows, atomic, last);
      } catch (error) {
        await tx`rollback`.catch(() => {});
        if (attempt >= ATTEMPTS || !RETRYABLE.has(sqlState(error) ?? "")) throw error;
      } finally {
        tx.release();
      }
    }
  }

  /**
   * Runs the append statement and commits; with a log, its step goes between the two. When no event has an id the
   * client chose, none can be stored already: every event is fresh and takes the next of its tenant's sequences,
   * which the lock returned (`last`), so the stored rows are known before the statement answers and the step is sent
   * with it. Otherwise the step waits for the statement's answer (one round trip more).
   */
  private async finish(
    tx: postgres.ReservedSql,
    statement: ReturnType<typeof appendStatement>,
    rows: InputRow[],
    atomic: boolean,
    last: Map<string, number>,
  ): Promise<ItemOutcome[]> {
    if (!this.log) {
      const [result] = await Promise.all([statement, tx`commit`]);
      return outcomes(rows, result, atomic);
    }
    if (!rows.some((row) => row.clientId)) {
      const next = new Map(last);
      const stored = rows.map((row) => {
        const sequence = (next.get(row.tenant) as number) + 1;
        next.set(row.tenant, sequence);
        return storedRow(row, sequence);
      });
      // On the wire before the step's statements; a failed statement makes PostgreSQL refuse them and roll back.
      const sent = statement.execute();
      const [result] = await Promise.all([sent, this.log.commit(tx, stored)]);
      return outcomes(rows, result, atomic, stored);
    }
    const out = outcomes(rows, await statement, atomic);
    await this.log.commit(
      tx,
      out.flatMap((o) => (o.kind === "stored" ? [o.row] : [])),
    );
    return out;
  }

  /**
   * Built by drizzle, run by postgres.js as a prepared statement whose select list already names the columns as
   * EventRow does, so rows need no mapping. With plan_cache_mode force_custom_plan (database.ts) each run is still
   * planned for its own values, as the plans in docs/storage.md are.
   *
   * The statement's text is kept per shape of query (which conditions, the order, whether there is a cursor) and only
   * the parameters are made per call, by listParams. A text is kept only once drizzle's parameters for it have come
   * out equal to listParams', so the two cannot drift. Why not drizzle's own prepared statements with placeholders:
   * docs/performance.md ("Reads").
   */
  list(q: ListQuery): Promise<EventRow[]> {
    return this.observer.operation("list", 0, () => this.select(q));
  }

  private async select(q: ListQuery): Promise<EventRow[]> {
    const filter = compileFilter(q);
    const shape = listShape(filter, q);
    let text = this.listTexts.get(shape);
    let params = listParams(filter, q);
    if (text === undefined) {
      const built = this.listQuery(q).toSQL();
      text = built.sql;
      if (sameValues(built.params, params) && this.listTexts.size < LIST_SHAPES_KEPT) this.listTexts.set(shape, text);
      params = built.params;
    }
    const rows = await this.sql.unsafe<(Omit<EventRow, "sequence"> & { sequence: string | number })[]>(
      text,
      params as postgres.ParameterOrJSON<never>[],
      { prepare: true },
    );
    for (const row of rows) row.sequence = Number(row.sequence);
    return rows as EventRow[];
  }

  /** The SELECT behind `list`, unexecuted: test/core/explain.test.ts EXPLAINs it for docs/storage.md. */
  listQuery(q: ListQuery) {
    const conditions: SQL[] = [eq(events.tenant, q.tenant), ...filterSql(compileFilter(q), q.nowMicros)];
    if (q.after) {
      const cursor = sql`(${q.after.occurredAt}::timestamptz, ${q.after.sequence}::bigint)`;
      const key = sql`(${events.occurredAt}, ${events.sequence})`;
      conditions.push(q.newestFirst ? sql`${key} < ${cursor}` : sql`${key} > ${cursor}`);
    }
    const direction = q.newestFirst ? desc : asc;
    return this.db
      .select(LIST_FIELDS)
      .from(events)
      .where(and(...conditions))
      .orderBy(direction(events.occurredAt), direction(events.sequence))
      .limit(q.limit);
  }

  /**
   * The filter's WHERE clause is List's (compileFilter), so the index that serves a List of the same filter serves the
   * count: the time range on events_tenant_time_idx, or an equality filter's own index. The caller bounds the range.
   * Grouped by position: the bucket expression carries a parameter, which GROUP BY could not match by text.
   */
  count(q: CountQuery): Promise<CountRow[]> {
    return this.observer.operation("count", 0, async () => {
      const rows = await this.countQuery(q);
      return rows.map((r) => ({
        bucketSeconds: Number(r.bucketSeconds),
        outcomeStatus: r.outcomeStatus,
        count: Number(r.count),
      }));
    });
  }

  /** The SELECT behind `count`, unexecuted: test/core/explain.test.ts EXPLAINs it. */
  countQuery(q: CountQuery) {
    const width = sql`make_interval(secs => ${Number(q.widthSeconds)})`;
    const bucket = sql`extract(epoch from date_bin(${width}, ${events.occurredAt}, 'epoch'::timestamptz))::bigint`;
    return this.db
      .select({
        bucketSeconds: sql<string>`${bucket}`,
        outcomeStatus: events.outcomeStatus,
        count: sql<string>`count(*)`,
      })
      .from(events)
      .where(and(eq(events.tenant, q.tenant), ...filterSql(compileFilter(q), q.nowMicros)))
      .groupBy(sql`1`, sql`2`)
      .orderBy(sql`1`, sql`2`);
  }

  range(q: RangeQuery): Promise<EventRow[]> {
    return this.observer.operation("range", 0, () => this.selectRange(q));
  }

  private async selectRange(q: RangeQuery): Promise<EventRow[]> {
    const conditions: SQL[] = [eq(events.tenant, q.tenant), gt(events.sequence, q.afterSequence)];
    if (q.throughSequence !== undefined) conditions.push(lte(events.sequence, q.throughSequence));
    if (q.filter) conditions.push(...filterSql(q.filter, q.nowMicros));
    return this.db
      .select(OUTPUT_FIELDS)
      .from(events)
      .where(and(...conditions))
      .orderBy(asc(events.sequence))
      .limit(q.limit);
  }

  /** One of a tenant's events by its id (unique per tenant: events_tenant_id_key), or undefined. */
  async get(tenant: string, id: string): Promise<EventRow | undefined> {
    const [row] = await this.db
      .select(OUTPUT_FIELDS)
      .from(events)
      .where(and(eq(events.tenant, tenant), eq(events.id, id)));
    return row;
  }

  /** The highest committed sequence of a tenant, 0 before its first event. */
  async lastSequence(tenant: string): Promise<number> {
    const [row] = await this.db
      .select({ last: tenantSequences.lastSequence })
      .from(tenantSequences)
      .where(eq(tenantSequences.tenant, tenant));
    return row?.last ?? 0;
  }
}

/** Shapes are few (which filters a caller sets); the bound only stops a caller who varies them from growing it. */
const LIST_SHAPES_KEPT = 1000;

/** What decides List's statement text: the filter's conditions without their values, the order, a cursor or not. */
function listShape(filter: CompiledFilter, q: ListQuery): string {
  return `${q.newestFirst ? "desc" : "asc"}${q.after ? "+after" : ""}:${conditionShape(filter)}`;
}

function conditionShape(conditions: readonly Condition[]): string {
  return conditions
    .map((c) => (c.op === "any" ? `any(${conditionShape(c.of)})` : c.op === "equals" ? `=${c.column}` : c.op))
    .join(",");
}

/** listQuery's parameters, in the order drizzle writes them: tenant, each condition's, the cursor, the limit. */
function listParams(filter: CompiledFilter, q: ListQuery): unknown[] {
  const params: unknown[] = [q.tenant, ...conditionParams(filter, q.nowMicros)];
  if (q.after) params.push(q.after.occurredAt, q.after.sequence);
  params.push(q.limit);
  return params;
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

const { contentHash: _hash, ...OUTPUT_FIELDS } = getTableColumns(events);

/** EventRow's columns as a select list (`actor_id as "actorId"`, ...), from the schema so the two cannot drift. */
function outputColumnList(table: string): string {
  return Object.entries(OUTPUT_FIELDS)
    .map(([key, column]) => `${table}${column.name} as "${key}"`)
    .join(", ");
}

const EXISTING_COLUMNS = outputColumnList("x.");

/** EventRow's columns for drizzle's select, each aliased to its EventRow key so raw rows need no mapping. */
const LIST_FIELDS = Object.fromEntries(
  Object.entries(OUTPUT_FIELDS).map(([key, column]) => [key, sql`${column}`.as(key)]),
);

/**
 * The append statement over `input`, a query yielding InputRow's columns with their SQL types (see jsonInput).
 * Exported so bench/write-paths.ts can time other ways of shipping the rows (unnest arrays, VALUES, COPY).
 */
export function appendStatement(
  sql: postgres.Sql | postgres.ReservedSql,
  input: postgres.PendingQuery<postgres.Row[]>,
  atomic: boolean,
) {
  return sql<StatementRow[]>`
    with input as (${input}),
    existing as (
      select i.ord, e.content_hash = i."contentHash" as same, e.*
      from input i join events e on e.tenant = i.tenant and e.id = i.id
      where i."clientId"
    ),
    fresh as (
      select i.*, row_number() over (partition by i.tenant order by i.ord) as rank
      from input i
      where not exists (select from existing x where x.ord = i.ord)
        and not (${atomic}::boolean and exists (select from existing x where not x.same))
    ),
    counts as (select tenant, count(*) as n from fresh group by tenant),
    sequences as (
      insert into tenant_sequences as s (tenant, last_sequence)
      select tenant, n from counts order by tenant
      on conflict (tenant) do update set last_sequence = s.last_sequence + excluded.last_sequence
      returning s.tenant, s.last_sequence
    ),
    -- Referenced by nothing: PostgreSQL runs every data-modifying CTE to completion all the same.
    inserted as (
      insert into events (${sql.unsafe(INSERT_COLUMNS)})
      select ${sql.unsafe(INSERT_VALUES)}
      from fresh f join counts c using (tenant) join sequences s using (tenant)
    )
    select
      s.tenant as "freshTenant", s.last_sequence as "lastSequence", c.n as "freshCount", x.ord, x.same,
      ${sql.unsafe(EXISTING_COLUMNS)}
    from sequences s join counts c using (tenant)
    full join existing x on false
  `;
}

/**
 * The rows as one jsonb parameter: one JSON.stringify in Node and one parse in PostgreSQL, whatever the batch size,
 * so the statement text never changes and stays prepared. Its columns are InputRow's keys with the schema's types
 * (INPUT_COLUMNS). jsonb rather than json because json_to_recordset lexes its text again and parses request and
 * attributes a third time; docs/performance.md compares the ways of shipping rows (bench/write-paths.ts).
 */
export function jsonInput(sql: postgres.Sql | postgres.ReservedSql, rows: InputRow[]) {
  return sql`
    select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(${sql.unsafe(INPUT_COLUMN_LIST)})
  `;
}

/** The columns of events by their schema keys (occurredAt), in the schema's order: the one list of columns. */
const COLUMNS = Object.entries(getTableColumns(events)) as [keyof typeof events.$inferSelect, PgColumn][];

/**
 * Each input column by its InputRow key and SQL type: ord (the event's place in the write), clientId (whether the
 * client chose the id), and every events column but sequence, which the statement assigns.
 */
export const INPUT_COLUMNS: readonly { key: keyof InputRow; type: string }[] = [
  { key: "ord", type: "int" },
  { key: "clientId", type: "boolean" },
  ...COLUMNS.flatMap(([key, column]) => (key === "sequence" ? [] : [{ key, type: column.getSQLType() }])),
];

const INPUT_COLUMN_LIST = INPUT_COLUMNS.map(({ key, type }) => `"${key}" ${type}`).join(", ");
const INSERT_COLUMNS = COLUMNS.map(([, column]) => column.name).join(", ");
/** Each column's value in the insert: the input's, but for sequence the tenant's next (see appendStatement). */
const INSERT_VALUES = COLUMNS.map(([key]) =>
  key === "sequence" ? "s.last_sequence - c.n + f.rank" : `f."${key}"`,
).join(", ");

/** A column's default as the input's JSON carries it: what an event that leaves the column unset is stored with. */
function jsonDefault(column: PgColumn): unknown {
  if (!column.hasDefault) return null;
  if (!is(column.default, SQL)) return column.default;
  if (is(column, PgArray)) return [];
  throw new Error(`the default of events.${column.name} has no JSON form`);
}

/**
 * An input row with every column at the value it takes when the event leaves it unset, in INPUT_COLUMNS' order. Each
 * row starts as a copy of it, so all rows share one shape and the loop in inputRow only overwrites properties (adding
 * them one by one made JSON.stringify of the batch markedly slower).
 */
const UNSET_ROW: Record<string, unknown> = {
  ord: 0,
  clientId: false,
  ...Object.fromEntries(COLUMNS.flatMap(([key, column]) => (key === "sequence" ? [] : [[key, jsonDefault(column)]]))),
};
const COPIED = Object.keys(UNSET_ROW).filter((key) => key !== "ord" && key !== "clientId");

/** The statement's input: one JSON object per event, keyed as INPUT_COLUMNS names the columns. */
export function inputRow({ tenant, event }: GroupItem, ord: number, receivedMicros: bigint): InputRow {
  const { iso: receivedAt, ms: receivedMs } = received(receivedMicros);
  // Only an id the client chose can already be stored: a fresh uuidv7 needs no lookup (an index probe per event).
  const row = { ...UNSET_ROW };
  row.ord = ord;
  row.clientId = event.id !== "";
  const given = event as Record<string, unknown>;
  for (const key of COPIED) {
    const value = given[key];
    if (value !== undefined && value !== null) row[key] = value;
  }
  // The columns the store assigns or derives; assigning keeps each key where the schema put it.
  row.tenant = tenant;
  row.id = event.id || uuidv7(receivedMs);
  row.occurredAt = event.occurredAt ?? receivedAt;
  row.receivedAt = receivedAt;
  if (event.ttlMinutes) row.expiresAt = microsToIso(receivedMicros + BigInt(event.ttlMinutes) * 60_000_000n);
  row.contentHash = `\\x${event.contentHash.toString("hex")}`;
  return row as InputRow;
}

/** One event as the append statement takes it: the stored row but its sequence, and what the statement needs. */
export type InputRow = Omit<EventRow, "sequence"> & { ord: number; clientId: boolean; contentHash: string };

/** Every event of a write shares its received_at: formatted once, not once per event. */
let lastReceived = { micros: -1n, iso: "", ms: 0 };

function received(micros: bigint): { iso: string; ms: number } {
  if (lastReceived.micros !== micros) {
    lastReceived = { micros, iso: microsToIso(micros), ms: Number(micros / 1000n) };
  }
  return lastReceived;
}

/**
 * A row of the append statement: per tenant that got new events, its last sequence and how many it got (the
 * fresh* columns); per input event whose id is already stored, that stored event (ord, same and its columns).
 */
type StatementRow = Omit<EventRow, "sequence"> & {
  freshTenant: string | null;
  lastSequence: string | null;
  freshCount: string | null;
  ord: number | null;
  same: boolean | null;
  sequence: string | null;
};

/**
 * Each event's outcome. The statement returns only what Node cannot know: the stored events behind known ids, and
 * each tenant's new last sequence. The rest follows as in the statement: an event is fresh unless its id is stored,
 * or another event of an all-or-nothing batch conflicts; a tenant's fresh events take the sequences up to its last,
 * in input order. Each tenant's count of fresh events is checked against the statement's own, and the rows `made`
 * before the statement answered (every event fresh) against the sequences it gave.
 */
function outcomes(input: InputRow[], result: StatementRow[], atomic: boolean, made?: EventRow[]): ItemOutcome[] {
  const out: ItemOutcome[] = new Array(input.length);
  const next = new Map<string, { sequence: number; left: number }>();
  let conflicts = false;
  for (const r of result) {
    if (r.freshTenant !== null) {
      const count = Number(r.freshCount);
      next.set(r.freshTenant, { sequence: Number(r.lastSequence) - count + 1, left: count });
    } else if (r.ord !== null) {
      const { freshTenant, lastSequence, freshCount, ord, same, ...row } = r;
      conflicts ||= !same;
      out[ord] = same
        ? { kind: "replayed", row: { ...row, sequence: Number(r.sequence) } }
        : { kind: "conflict", id: r.id };
    }
  }
  // An all-or-nothing batch with a conflict writes nothing, and the statement advanced no sequence.
  const skipAll = atomic && conflicts;
  if (skipAll && next.size > 0) throw new Error("append statement stored events of a batch with a conflict");
  for (let ord = 0; ord < input.length; ord++) {
    if (out[ord] !== undefined) continue;
    const sent = input[ord] as InputRow;
    const tenant = next.get(sent.tenant);
    if (skipAll) {
      out[ord] = { kind: "skipped" };
    } else if (tenant === undefined || tenant.left === 0) {
      throw new Error(`append statement stored fewer events of tenant ${sent.tenant} than were fresh`);
    } else {
      const sequence = tenant.sequence++;
      const row = made?.[ord] ?? storedRow(sent, sequence);
      if (row.sequence !== sequence) {
        throw new Error(`append statement stored event ${ord} at sequence ${sequence}, not ${row.sequence}`);
      }
      out[ord] = { kind: "stored", row };
      tenant.left--;
    }
  }
  for (const [tenant, { left }] of next) {
    if (left !== 0) throw new Error(`append statement stored more events of tenant ${tenant} than were fresh`);
  }
  return out;
}

/**
 * The row as inserted, built from what was sent rather than read back: tenant, sequence, then the other columns but
 * content_hash in the schema's order. One object literal compiled once from the schema (a rest copy of the input row
 * and a spread cost several times as much per event); keys are the schema's, quoted, never request data.
 */
const storedRow = new Function(
  "sent",
  "sequence",
  `return { tenant: sent.tenant, sequence, ${COLUMNS.flatMap(([key]) =>
    key === "tenant" || key === "sequence" || key === "contentHash"
      ? []
      : [`${JSON.stringify(key)}: sent[${JSON.stringify(key)}]`],
  ).join(", ")} };`,
) as (sent: InputRow, sequence: number) => EventRow;

/**
 * sql.reserve(), bounded. postgres.js 3.4.9 can leave a reservation queued for good when its connection attempts fail
 * during an outage (test/reliability/outage.test.ts caught calls waiting past their 15 s deadline after the
 * database was back). After the pool's connect timeout the write fails as a failed connection would
 * (CONNECT_TIMEOUT: UNAVAILABLE, retryable, nothing written); a reservation that still arrives is released at once.
 */
function reserveConnection(sql: postgres.Sql): Promise<postgres.ReservedSql> {
  return new Promise((resolve, reject) => {
    let gaveUp = false;
    const timer = setTimeout(() => {
      gaveUp = true;
      reject(
        Object.assign(new Error(`no database connection within ${CONNECT_TIMEOUT_SECONDS} s`), {
          code: "CONNECT_TIMEOUT",
        }),
      );
    }, CONNECT_TIMEOUT_SECONDS * 1000);
    sql.reserve().then(
      (tx) => {
        if (gaveUp) tx.release();
        else {
          clearTimeout(timer);
          resolve(tx);
        }
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** The SQLSTATE of a database error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
