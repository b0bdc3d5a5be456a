import { and, asc, desc, eq, getTableColumns, gte, like, lt, or, type SQL, sql } from "drizzle-orm";
import type { Clock } from "../clock.js";
import type { Db } from "./database.js";
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
};

export type AppendResult =
  | { ok: true; events: EventRow[] }
  /** An id already stored with other content; nothing of the batch was written. */
  | { ok: false; conflictIndex: number; id: string };

export interface ListQuery {
  tenant: string;
  limit: number;
  newestFirst: boolean;
  /** Keyset cursor: rows strictly after this (occurred_at, sequence) in the listing order. */
  after?: { occurredAt: string; sequence: number };
  startTime?: string;
  endTime?: string;
  actions: string[];
  actorId: string;
  actorName: string;
  targetId: string;
  targetType: string;
  category: string;
  source: string;
  outcomeStatus: number;
  parentId: string;
  includeChildren: boolean;
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
        const row = {
          ...event,
          id: event.id || uuidv7(receivedMs),
          tenant,
          sequence: last,
          receivedAt,
          occurredAt: event.occurredAt ?? receivedAt,
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
    const conditions: (SQL | undefined)[] = [eq(events.tenant, q.tenant)];
    if (q.startTime) conditions.push(gte(events.occurredAt, q.startTime));
    if (q.endTime) conditions.push(lt(events.occurredAt, q.endTime));
    if (q.actions.length > 0) {
      conditions.push(
        or(
          ...q.actions.map((a) =>
            a.endsWith("*") ? like(events.action, `${escapeLike(a.slice(0, -1))}%`) : eq(events.action, a),
          ),
        ),
      );
    }
    if (q.actorId) conditions.push(eq(events.actorId, q.actorId));
    if (q.actorName) conditions.push(eq(events.actorName, q.actorName));
    if (q.targetId) conditions.push(eq(events.targetId, q.targetId));
    if (q.targetType) conditions.push(eq(events.targetType, q.targetType));
    if (q.category) conditions.push(eq(events.category, q.category));
    if (q.source) conditions.push(eq(events.source, q.source));
    if (q.outcomeStatus) conditions.push(eq(events.outcomeStatus, q.outcomeStatus));
    if (q.parentId) conditions.push(eq(events.parentId, q.parentId));
    else if (!q.includeChildren) conditions.push(eq(events.parentId, ""));
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
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}
