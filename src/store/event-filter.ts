import { eq, gt, gte, isNull, like, lt, notLike, or, type SQL } from "drizzle-orm";
import type { EventRow } from "./event-store.js";
import { events } from "./schema.js";
import { microsToIso, pgTimestampMicros } from "./time.js";

/** The category Publish stores; with the action (the template name) it marks an event published from a template. */
export const UNIVERSAL_EVENT_CATEGORY = "universal_event";

/**
 * The categories of the service's own records (self-audit). A filter with no category leaves them out, as it leaves
 * out child events: a tenant's listing shows its applications' events; the records are one `category` away.
 */
export const SERVICE_CATEGORY_PREFIX = "audit-trail.";

/** The selection List and Tail share. Empty strings and 0 mean "any". */
export interface EventFilter {
  /** occurred_at >= startTime (ISO, microseconds). */
  startTime?: string;
  /** occurred_at < endTime. */
  endTime?: string;
  /** Exact actions, or prefixes ending in "*". */
  actions: string[];
  actorId: string;
  actorName: string;
  targetId: string;
  targetType: string;
  category: string;
  source: string;
  outcomeStatus: number;
  /** Only the direct children of this event. */
  parentId: string;
  /** Without parentId, child events are left out unless this is set. */
  includeChildren: boolean;
  /** Only events whose expires_at is unset or after "now" (given at evaluation). */
  activeOnly: boolean;
  /** Only events published from this template. */
  eventName: string;
  /** Without a category, the service's own records (SERVICE_CATEGORY_PREFIX) are left out unless this is set. */
  includeServiceRecords?: boolean;
}

type TextColumn = "action" | "actorId" | "actorName" | "targetId" | "targetType" | "category" | "source" | "parentId";

/**
 * One filter, compiled once into conditions that are both rendered as SQL (List, Tail's replay) and evaluated on rows
 * in memory (Tail's live events), so the two cannot drift apart. test/tail/event-filter.test.ts checks them against
 * each other on random rows and filters.
 */
export type Condition =
  | { op: "equals"; column: TextColumn; value: string }
  | { op: "prefix"; column: "action"; value: string }
  | { op: "notPrefix"; column: "category"; value: string }
  | { op: "outcome"; value: number }
  | { op: "since" | "before"; micros: bigint }
  | { op: "active" }
  | { op: "any"; of: Condition[] };

export type CompiledFilter = readonly Condition[];

export function compileFilter(f: EventFilter): CompiledFilter {
  const conditions: Condition[] = [];
  const equals = (column: TextColumn, value: string) => {
    if (value !== "") conditions.push({ op: "equals", column, value });
  };
  if (f.startTime) conditions.push({ op: "since", micros: pgTimestampMicros(f.startTime) });
  if (f.endTime) conditions.push({ op: "before", micros: pgTimestampMicros(f.endTime) });
  if (f.actions.length > 0) {
    conditions.push({
      op: "any",
      of: f.actions.map(
        (a): Condition =>
          a.endsWith("*")
            ? { op: "prefix", column: "action", value: a.slice(0, -1) }
            : { op: "equals", column: "action", value: a },
      ),
    });
  }
  equals("actorId", f.actorId);
  equals("actorName", f.actorName);
  equals("targetId", f.targetId);
  equals("targetType", f.targetType);
  if (f.category) equals("category", f.category);
  else if (!f.eventName && !f.includeServiceRecords)
    conditions.push({ op: "notPrefix", column: "category", value: SERVICE_CATEGORY_PREFIX });
  equals("source", f.source);
  if (f.outcomeStatus) conditions.push({ op: "outcome", value: f.outcomeStatus });
  if (f.parentId) equals("parentId", f.parentId);
  else if (!f.includeChildren) conditions.push({ op: "equals", column: "parentId", value: "" });
  if (f.activeOnly) conditions.push({ op: "active" });
  if (f.eventName) {
    conditions.push({ op: "equals", column: "category", value: UNIVERSAL_EVENT_CATEGORY });
    conditions.push({ op: "equals", column: "action", value: f.eventName });
  }
  return conditions;
}

/** The filter as a WHERE clause; `nowMicros` decides what "active" means. */
export function filterSql(filter: CompiledFilter, nowMicros: bigint): SQL[] {
  const render = (c: Condition): SQL | undefined => {
    switch (c.op) {
      case "equals":
        return eq(events[c.column], c.value);
      case "prefix":
        return like(events[c.column], `${escapeLike(c.value)}%`);
      case "notPrefix":
        return notLike(events[c.column], `${escapeLike(c.value)}%`);
      case "outcome":
        return eq(events.outcomeStatus, c.value);
      case "since":
        return gte(events.occurredAt, microsToIso(c.micros));
      case "before":
        return lt(events.occurredAt, microsToIso(c.micros));
      case "active":
        return or(isNull(events.expiresAt), gt(events.expiresAt, microsToIso(nowMicros)));
      case "any":
        return or(...c.of.map(render));
    }
  };
  return filter.map(render).filter((s) => s !== undefined);
}

/** The values filterSql's SQL carries as parameters, in the order it writes them. */
export function conditionParams(filter: CompiledFilter, nowMicros: bigint): unknown[] {
  const params: unknown[] = [];
  const collect = (c: Condition) => {
    switch (c.op) {
      case "equals":
      case "outcome":
        params.push(c.value);
        break;
      case "prefix":
      case "notPrefix":
        params.push(`${escapeLike(c.value)}%`);
        break;
      case "since":
      case "before":
        params.push(microsToIso(c.micros));
        break;
      case "active":
        params.push(microsToIso(nowMicros));
        break;
      case "any":
        c.of.forEach(collect);
        break;
    }
  };
  filter.forEach(collect);
  return params;
}

/** The same filter evaluated on a stored row. */
export function filterMatches(filter: CompiledFilter, row: EventRow, nowMicros: bigint): boolean {
  const test = (c: Condition): boolean => {
    switch (c.op) {
      case "equals":
        return row[c.column] === c.value;
      case "prefix":
        return row[c.column].startsWith(c.value);
      case "notPrefix":
        return !row[c.column].startsWith(c.value);
      case "outcome":
        return row.outcomeStatus === c.value;
      case "since":
        return pgTimestampMicros(row.occurredAt) >= c.micros;
      case "before":
        return pgTimestampMicros(row.occurredAt) < c.micros;
      case "active":
        return row.expiresAt === null || pgTimestampMicros(row.expiresAt) > nowMicros;
      case "any":
        return c.of.some(test);
    }
  };
  return filter.every(test);
}

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}
