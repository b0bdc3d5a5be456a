import { create, fromJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
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
    request: row.request ? readRequestInfo(row.request) : undefined,
    attributes: (row.attributes as JsonObject | null) ?? undefined,
    parentId: row.parentId,
  });
}

/**
 * The stored request is toJson of a RequestInfo, whose JSON names are its field names in TypeScript: create() takes
 * the object as it is, several times faster than fromJson, which matters on every row of every page. Should a field
 * ever get a JSON name of its own, fromJson takes over.
 */
const requestJsonIsInit = RequestInfoSchema.fields.every((f) => f.jsonName === f.localName);

function readRequestInfo(json: unknown) {
  return requestJsonIsInit
    ? create(RequestInfoSchema, json as MessageInitShape<typeof RequestInfoSchema>)
    : fromJson(RequestInfoSchema, json as JsonValue);
}
