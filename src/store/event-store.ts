import { and, asc, desc, eq, getTableColumns, gt, lte, type SQL, sql } from "drizzle-orm";
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
 * A step of every append transaction between its statement and COMMIT, given the rows the statement stored (all
 * tenants, input order); it sends the COMMIT itself, pipelined with its own last statement. The verifiable log
 * (src/vlog/tree-log.ts) is one: its tree advances in the transaction that stores the events.
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
        await Promise.all([
          tx`begin`,
          tx`
            insert into tenant_sequences (tenant, last_sequence)
            select tenant, 0 from unnest(${tenants}::text[]) as tenant order by tenant
            on conflict (tenant) do update set last_sequence = tenant_sequences.last_sequence
          `,
        ]);
        const receivedMicros = clock.nowMicros();
        const rows = items.map((item, ord) => inputRow(item, ord, receivedMicros));
        return await this.finish(tx, appendStatement(tx, jsonInput(tx, rows), atomic), rows, atomic);
      } catch (error) {
        await tx`rollback`.catch(() => {});
        if (attempt >= ATTEMPTS || !RETRYABLE.has(sqlState(error) ?? "")) throw error;
      } finally {
        tx.release();
      }
    }
  }

  /** Runs the append statement and commits; with a log, its step goes between the two (one round trip more). */
  private async finish(
    tx: postgres.ReservedSql,
    statement: ReturnType<typeof appendStatement>,
    rows: InputRow[],
    atomic: boolean,
  ): Promise<ItemOutcome[]> {
    if (!this.log) {
      const [result] = await Promise.all([statement, tx`commit`]);
      return outcomes(rows, result, atomic);
    }
    const out = outcomes(rows, await statement, atomic);
    await this.log.commit(
      tx,
      out.flatMap((o) => (o.kind === "stored" ? [o.row] : [])),
    );
    return out;
  }

  /**
   * Built by drizzle, run by postgres.js as a prepared statement: drizzle's per-column row mapping was an eighth of
   * List's CPU, and the select list already names the columns as EventRow does. With plan_cache_mode
   * force_custom_plan (database.ts) each run is still planned for its own values, as the plans in docs/storage.md are.
   *
   * Building the statement took drizzle another sixth of a List, so its text is kept per shape of query (which
   * conditions, the order, whether there is a cursor) and only the parameters are made per call, by listParams. A
   * text is kept only once drizzle's parameters for it have come out equal to listParams', so the two cannot drift.
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
      select i.ord, e.content_hash = i.content_hash as same, e.*
      from input i join events e on e.tenant = i.tenant and e.id = i.id
      where i.client_id
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
      insert into events (
        tenant, sequence, id, occurred_at, received_at, completed_at, expires_at, source, action, category,
        actor_id, actor_type, actor_name, actor_email, actor_roles, target_id, target_type, target_name,
        outcome_status, outcome_code, outcome_message, request, attributes, parent_id, content_hash)
      select
        f.tenant, s.last_sequence - c.n + f.rank, f.id, f.occurred_at, f.received_at, f.completed_at,
        f.expires_at, f.source, f.action, f.category, f.actor_id, f.actor_type, f.actor_name, f.actor_email,
        f.actor_roles, f.target_id, f.target_type, f.target_name, f.outcome_status, f.outcome_code,
        f.outcome_message, f.request, f.attributes, f.parent_id, f.content_hash
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
 * so the statement text never changes and stays prepared. Measured faster than unnest arrays, VALUES and COPY; jsonb
 * rather than json because json_to_recordset lexes its text again, and parses request and attributes a third time
 * (about 2.5 ms less per 500 events, bench/write-paths.ts).
 */
export function jsonInput(sql: postgres.Sql | postgres.ReservedSql, rows: InputRow[]) {
  return sql`
    select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as x(
      ord int, client_id boolean, tenant text, id text, occurred_at timestamptz, received_at timestamptz,
      completed_at timestamptz, expires_at timestamptz, source text, action text, category text,
      actor_id text, actor_type text, actor_name text, actor_email text, actor_roles text[],
      target_id text, target_type text, target_name text, outcome_status smallint, outcome_code text,
      outcome_message text, request jsonb, attributes jsonb, parent_id text, content_hash bytea)
  `;
}

/** The statement's input: one JSON object per event, keys as the jsonb_to_recordset column list names them. */
export function inputRow({ tenant, event }: GroupItem, ord: number, receivedMicros: bigint) {
  const { iso: receivedAt, ms: receivedMs } = received(receivedMicros);
  return {
    ord,
    // Only an id the client chose can already be stored: a fresh uuidv7 needs no lookup (an index probe per event).
    client_id: event.id !== "",
    tenant,
    id: event.id || uuidv7(receivedMs),
    occurred_at: event.occurredAt ?? receivedAt,
    received_at: receivedAt,
    completed_at: event.completedAt ?? null,
    expires_at: event.ttlMinutes
      ? microsToIso(receivedMicros + BigInt(event.ttlMinutes) * 60_000_000n)
      : (event.expiresAt ?? null),
    source: event.source ?? "",
    action: event.action,
    category: event.category ?? "",
    actor_id: event.actorId ?? "",
    actor_type: event.actorType ?? "",
    actor_name: event.actorName ?? "",
    actor_email: event.actorEmail ?? "",
    actor_roles: event.actorRoles ?? [],
    target_id: event.targetId ?? "",
    target_type: event.targetType ?? "",
    target_name: event.targetName ?? "",
    outcome_status: event.outcomeStatus ?? 0,
    outcome_code: event.outcomeCode ?? "",
    outcome_message: event.outcomeMessage ?? "",
    request: event.request ?? null,
    attributes: event.attributes ?? null,
    parent_id: event.parentId ?? "",
    content_hash: `\\x${event.contentHash.toString("hex")}`,
  };
}

export type InputRow = ReturnType<typeof inputRow>;

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
 * in input order. Each tenant's count of fresh events is checked against the statement's own.
 */
function outcomes(input: InputRow[], result: StatementRow[], atomic: boolean): ItemOutcome[] {
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
      out[ord] = { kind: "stored", row: storedRow(sent, tenant.sequence++) };
      tenant.left--;
    }
  }
  for (const [tenant, { left }] of next) {
    if (left !== 0) throw new Error(`append statement stored more events of tenant ${tenant} than were fresh`);
  }
  return out;
}

/** The row as inserted, built from what was sent rather than read back. */
function storedRow(sent: InputRow, sequence: number): EventRow {
  return {
    tenant: sent.tenant,
    sequence,
    id: sent.id,
    occurredAt: sent.occurred_at,
    receivedAt: sent.received_at,
    completedAt: sent.completed_at,
    expiresAt: sent.expires_at,
    source: sent.source,
    action: sent.action,
    category: sent.category,
    actorId: sent.actor_id,
    actorType: sent.actor_type,
    actorName: sent.actor_name,
    actorEmail: sent.actor_email,
    actorRoles: sent.actor_roles,
    targetId: sent.target_id,
    targetType: sent.target_type,
    targetName: sent.target_name,
    outcomeStatus: sent.outcome_status,
    outcomeCode: sent.outcome_code,
    outcomeMessage: sent.outcome_message,
    request: sent.request,
    attributes: sent.attributes,
    parentId: sent.parent_id,
  };
}

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
