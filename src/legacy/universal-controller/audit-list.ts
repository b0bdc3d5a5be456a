import { type JsonValue, toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuditService, Order } from "../../../gen/audit/v1/audit_service_pb.js";
import { type AuditEvent, AuditEventSchema, OutcomeStatus } from "../../../gen/audit/v1/event_pb.js";
import type { LegacyCall } from "../adapter.js";
import { renderXml, type XmlNode } from "../xml.js";
import type { AuditFilter } from "./audit-filter.js";

/** How much one listing returns and reads (and LEGACY_LIST_MAX_BYTES). docs/legacy.md states the same numbers. */
export const listLimits = {
  /** Audits in one answer, newest first. */
  audits: 1000,
  /** Events read to find them when tableRecordName (which List cannot filter on) is given. */
  scanned: 10_000,
  /** Child audits nested under each audit, oldest first. */
  children: 100,
  /** Child listings run at once. */
  concurrency: 8,
};

interface Audit {
  event: AuditEvent;
  children: AuditEvent[];
}

/**
 * The audits matching a filter, through List with the caller's credential: the newest first, as many as fit in
 * `maxBytes` (each audit's protobuf size plus its children's). The listing ends before the first audit that would
 * pass it, children included, so what is answered is a complete prefix of the full answer; child listings stop
 * being started once the audits read so far pass it, so at most `concurrency` child listings more are held.
 */
export async function listAudits(
  call: LegacyCall,
  filter: AuditFilter,
  authorization: string | undefined,
  maxBytes: number,
): Promise<Audit[]> {
  const matches: AuditEvent[] = [];
  const sizes: number[] = [];
  let bytes = 0;
  let full = false;
  let scanned = 0;
  let pageToken = "";
  do {
    const page = await call(
      AuditService.method.list,
      { ...filter.list, pageSize: listLimits.audits, pageToken, order: Order.NEWEST_FIRST },
      authorization,
    );
    scanned += page.events.length;
    for (const event of page.events) {
      if (filter.tableRecordName !== undefined && event.target?.name !== filter.tableRecordName) continue;
      const size = eventBytes(event);
      full = bytes + size > maxBytes;
      if (full) break;
      bytes += size;
      sizes.push(size);
      if (matches.push(event) === listLimits.audits) break;
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && !full && matches.length < listLimits.audits && scanned < listLimits.scanned);

  const audits: Audit[] = matches.map((event) => ({ event, children: [] }));
  if (!filter.includeChildAudits) return audits;
  const fetched: boolean[] = [];
  let next = 0;
  const worker = async () => {
    while (bytes <= maxBytes) {
      const i = next++;
      const audit = audits[i];
      if (!audit) return;
      const page = await call(
        AuditService.method.list,
        { parentId: audit.event.id, pageSize: listLimits.children, order: Order.OLDEST_FIRST },
        authorization,
      );
      audit.children = page.events;
      const childBytes = page.events.reduce((sum, child) => sum + eventBytes(child), 0);
      sizes[i] = (sizes[i] ?? 0) + childBytes;
      bytes += childBytes;
      fetched[i] = true;
    }
  };
  await Promise.all(Array.from({ length: listLimits.concurrency }, worker));
  let used = 0;
  let kept = 0;
  while (kept < audits.length && fetched[kept] && used + (sizes[kept] ?? 0) <= maxBytes) {
    used += sizes[kept] ?? 0;
    kept += 1;
  }
  return audits.slice(0, kept);
}

/** An event's size as protobuf: what the listing's byte limit counts. */
function eventBytes(event: AuditEvent): number {
  return toBinary(AuditEventSchema, event).byteLength;
}

/** One audit in Universal Controller's field names; absent values are null. */
function auditFields(event: AuditEvent) {
  const text = (value: string | undefined) => (value ? value : null);
  const created = event.occurredAt ? ucTime(timestampDate(event.occurredAt)) : null;
  const createdBy = text(event.actor?.name) ?? text(event.actor?.id);
  return {
    additionalInfo: event.attributes ? JSON.stringify(event.attributes) : null,
    auditType: text(event.action),
    created,
    createdBy,
    description: text(event.outcome?.message),
    parentAudit: text(event.parentId),
    source: text(event.source),
    status: statusText(event.outcome?.status),
    sysId: event.id,
    tableKey: text(event.target?.id),
    tableName: text(event.target?.type),
    tableRecordName: text(event.target?.name),
    // Audit events never change after they are written.
    updated: created,
    updatedBy: createdBy,
    uuid: event.id,
  };
}

function statusText(status: OutcomeStatus | undefined): string | null {
  if (status === OutcomeStatus.SUCCESS) return "Success";
  if (status === OutcomeStatus.FAILURE) return "Failure";
  return null;
}

/** `2020-03-04 13:33:09 +0000`, the form Universal Controller lists times in (always UTC here). */
function ucTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace("T", " ")} +0000`;
}

/** A JSON array of audits, keys in the document's (alphabetical) order, each with its childAudits array. */
export function auditsJson(audits: Audit[]): string {
  const one = (event: AuditEvent, children: AuditEvent[]): JsonValue => {
    const { additionalInfo, auditType, ...rest } = auditFields(event);
    return { additionalInfo, auditType, childAudits: children.map((child) => one(child, [])), ...rest };
  };
  return JSON.stringify(audits.map((a) => one(a.event, a.children)));
}

/** `<audits><audit><childAudits>…</childAudits>…</audit></audits>`; absent values are left out. */
export function auditsXml(audits: Audit[]): string {
  const one = (event: AuditEvent, children: AuditEvent[]): XmlNode => ({
    name: "audit",
    content: [
      { name: "childAudits", content: children.map((child) => one(child, [])) },
      ...Object.entries(auditFields(event)).flatMap(([name, value]) =>
        value === null ? [] : [{ name, content: value }],
      ),
    ],
  });
  return renderXml({ name: "audits", content: audits.map((a) => one(a.event, a.children)) });
}
