import { and, asc, desc, eq, getTableColumns, gt, lte, type SQL, sql } from "drizzle-orm";
import type { Clock } from "../clock.js";
import type { Db } from "./database.js";
import { type CompiledFilter, compileFilter, type EventFilter, filterSql } from "./event-filter.js";
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

const { contentHash: _hash, ...outputColumns } = getTableColumns(events);

export class EventStore {
  constructor(private readonly db: Db) {}

  /**
   * Appends a tenant's events in one transaction: all are stored, or none. Ids already stored with the same content
   * resolve to the stored event (idempotent replay); with other content the whole call is refused.
   *
   * The tenant's sequence row is locked first, so writers of one tenant, on any instance, run one after another:
   * sequences come out gapless and in commit order, and the id check cannot race a concurrent insert. The clock is
   * read only once the lock is held, so received_at (the commit time) never goes backwards as sequences go up.
   */
  async append(tenant: string, batch: NewEvent[], clock: Clock): Promise<AppendResult> {
    return this.db.transaction(async (tx) => {
      const [lock] = await tx
        .insert(tenantSequences)
        .values({ tenant, lastSequence: 0 })
        .onConflictDoUpdate({
          target: tenantSequences.tenant,
          set: { lastSequence: sql`${tenantSequences.lastSequence}` },
        })
        .returning({ last: tenantSequences.lastSequence });
      let last = lock?.last ?? 0;
      const receivedMicros = clock.nowMicros();

      const ids = batch.map((e) => e.id).filter((id) => id !== "");
      const stored = new Map<string, EventRow & { contentHash: Buffer }>();
      if (ids.length > 0) {
        const rows = await tx
          .select()
          .from(events)
          .where(and(eq(events.tenant, tenant), sql`${events.id} = any(${sql.param(ids)}::text[])`));
        for (const row of rows) stored.set(row.id, row);
      }

      const receivedAt = microsToIso(receivedMicros);
      const receivedMs = Number(receivedMicros / 1000n);
      const result: EventRow[] = [];
      const inserts: (typeof events.$inferInsert)[] = [];
      for (const [index, event] of batch.entries()) {
        const existing = stored.get(event.id);
        if (existing) {
          if (!existing.contentHash.equals(event.contentHash)) return { ok: false, conflictIndex: index, id: event.id };
          const { contentHash, ...row } = existing;
          result.push(row);
          continue;
        }
        last += 1;
        const { ttlMinutes, ...fields } = event;
        const row = {
          ...fields,
          id: event.id || uuidv7(receivedMs),
          tenant,
          sequence: last,
          receivedAt,
          occurredAt: event.occurredAt ?? receivedAt,
          expiresAt: ttlMinutes ? microsToIso(receivedMicros + BigInt(ttlMinutes) * 60_000_000n) : event.expiresAt,
        };
        inserts.push(row);
        const { contentHash, ...output } = row;
        result.push(output as EventRow);
      }
      if (inserts.length > 0) {
        await tx.insert(events).values(inserts);
        await tx.update(tenantSequences).set({ lastSequence: last }).where(eq(tenantSequences.tenant, tenant));
      }
      return { ok: true, events: result };
    });
  }

  async list(q: ListQuery): Promise<EventRow[]> {
    return this.listQuery(q);
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
      .select(outputColumns)
      .from(events)
      .where(and(...conditions))
      .orderBy(direction(events.occurredAt), direction(events.sequence))
      .limit(q.limit);
  }

  async range(q: RangeQuery): Promise<EventRow[]> {
    const conditions: SQL[] = [eq(events.tenant, q.tenant), gt(events.sequence, q.afterSequence)];
    if (q.throughSequence !== undefined) conditions.push(lte(events.sequence, q.throughSequence));
    if (q.filter) conditions.push(...filterSql(q.filter, q.nowMicros));
    return this.db
      .select(outputColumns)
      .from(events)
      .where(and(...conditions))
      .orderBy(asc(events.sequence))
      .limit(q.limit);
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
