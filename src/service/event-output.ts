import { create, fromJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { type AuditEvent, RequestInfoSchema } from "../../gen/audit/v1/event_pb.js";
import type { EventRow } from "../store/event-store.js";
import { pgToTimestamp } from "../store/time.js";

/**
 * A stored row as the AuditEvent message every protocol returns. Built as the plain objects create() would make (a
 * proto3 message is one: `$typeName`, every scalar and list field, message fields only when set), because create()
 * ran for every message of every row of every page; test/core/event-output.test.ts checks they are equal.
 */
export function rowToEvent(row: EventRow): AuditEvent {
  const event: AuditEvent = {
    $typeName: "audit.v1.AuditEvent",
    id: row.id,
    tenant: row.tenant,
    sequence: BigInt(row.sequence),
    occurredAt: pgToTimestamp(row.occurredAt),
    receivedAt: pgToTimestamp(row.receivedAt),
    source: row.source,
    action: row.action,
    category: row.category,
    parentId: row.parentId,
  };
  if (row.completedAt) event.completedAt = pgToTimestamp(row.completedAt);
  if (row.actorId || row.actorType || row.actorName || row.actorEmail || row.actorRoles.length > 0) {
    event.actor = {
      $typeName: "audit.v1.Actor",
      id: row.actorId,
      type: row.actorType,
      name: row.actorName,
      email: row.actorEmail,
      roles: row.actorRoles,
    };
  }
  if (row.targetId || row.targetType || row.targetName) {
    event.target = { $typeName: "audit.v1.Target", id: row.targetId, type: row.targetType, name: row.targetName };
  }
  if (row.outcomeStatus || row.outcomeCode || row.outcomeMessage) {
    event.outcome = {
      $typeName: "audit.v1.Outcome",
      status: row.outcomeStatus,
      code: row.outcomeCode,
      message: row.outcomeMessage,
    };
  }
  if (row.request) event.request = readRequestInfo(row.request);
  if (row.attributes) event.attributes = row.attributes as JsonObject;
  if (row.expiresAt) event.expiresAt = pgToTimestamp(row.expiresAt);
  return event;
}

/**
 * The stored request is toJson of a RequestInfo, whose JSON names are its field names in TypeScript: create() takes
 * the object as it is, without fromJson's work, on every row of every page. Should a field
 * ever get a JSON name of its own, fromJson takes over.
 */
const requestJsonIsInit = RequestInfoSchema.fields.every((f) => f.jsonName === f.localName);

function readRequestInfo(json: unknown) {
  return requestJsonIsInit
    ? create(RequestInfoSchema, json as MessageInitShape<typeof RequestInfoSchema>)
    : fromJson(RequestInfoSchema, json as JsonValue);
}
