import { create, fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { type AuditEvent, AuditEventSchema, RequestInfoSchema } from "../../gen/audit/v1/event_pb.js";
import type { EventRow } from "../store/event-store.js";
import { pgToTimestamp } from "../store/time.js";

/** A stored row as the AuditEvent message every protocol returns. */
export function rowToEvent(row: EventRow): AuditEvent {
  const hasActor = row.actorId || row.actorType || row.actorName || row.actorEmail || row.actorRoles.length > 0;
  const hasTarget = row.targetId || row.targetType || row.targetName;
  const hasOutcome = row.outcomeStatus || row.outcomeCode || row.outcomeMessage;
  return create(AuditEventSchema, {
    id: row.id,
    tenant: row.tenant,
    sequence: BigInt(row.sequence),
    occurredAt: pgToTimestamp(row.occurredAt),
    receivedAt: pgToTimestamp(row.receivedAt),
    completedAt: row.completedAt ? pgToTimestamp(row.completedAt) : undefined,
    expiresAt: row.expiresAt ? pgToTimestamp(row.expiresAt) : undefined,
    source: row.source,
    action: row.action,
    category: row.category,
    actor: hasActor
      ? { id: row.actorId, type: row.actorType, name: row.actorName, email: row.actorEmail, roles: row.actorRoles }
      : undefined,
    target: hasTarget ? { id: row.targetId, type: row.targetType, name: row.targetName } : undefined,
    outcome: hasOutcome ? { status: row.outcomeStatus, code: row.outcomeCode, message: row.outcomeMessage } : undefined,
    request: row.request ? fromJson(RequestInfoSchema, row.request as JsonValue) : undefined,
    attributes: (row.attributes as JsonObject | null) ?? undefined,
    parentId: row.parentId,
  });
}
