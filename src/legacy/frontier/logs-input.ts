import { create, fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEventSchema } from "../../../gen/audit/v1/event_pb.js";
import { type FieldViolation, Reason } from "../../errors.js";
import { limits } from "../../service/limits.js";

const BODY_FIELDS = new Set(["logs"]);
// grpc-gateway's protojson accepts the JSON name (createdAt) as well as the proto name (created_at).
const LOG_FIELDS = new Set(["id", "source", "action", "actor", "target", "context", "created_at", "createdAt"]);
const PARTY_FIELDS = new Set(["id", "type", "name"]);

/**
 * The audit logs of a Frontier create request as AuditEvents, in order. Every problem of shape or type is added to
 * `violations` under its Frontier name (`logs[2].actor.id`); limits on content are left to BatchCreate.
 */
export function readLogs(body: JsonObject, violations: FieldViolation[]): AuditEvent[] {
  const bad = (field: string, description: string, reason: Reason = Reason.InvalidField) =>
    violations.push({ field, description, reason });
  unknownFields(body, BODY_FIELDS, "", bad);
  const logs = body.logs;
  if (logs === undefined || logs === null) {
    bad("logs", "is required", Reason.MissingField);
    return [];
  }
  if (!Array.isArray(logs)) {
    bad("logs", "must be an array of audit logs");
    return [];
  }
  if (logs.length > limits.batchEvents) {
    // Checked before the logs themselves, so a huge batch is not answered with a huge list of its faults.
    bad("logs", `must hold at most ${limits.batchEvents} logs, got ${logs.length}`);
    return [];
  }
  const events: AuditEvent[] = [];
  logs.forEach((log, i) => {
    const event = readLog(log, `logs[${i}]`, bad);
    if (event) events.push(event);
  });
  return events;
}

type Bad = (field: string, description: string, reason?: Reason) => void;

function readLog(log: JsonValue, path: string, bad: Bad): AuditEvent | undefined {
  if (!isObject(log)) {
    bad(path, "must be an object");
    return undefined;
  }
  unknownFields(log, LOG_FIELDS, `${path}.`, bad);
  const text = (field: string) => stringField(log[field], `${path}.${field}`, bad);
  const id = text("id");
  const source = text("source");
  const action = text("action");
  for (const field of ["source", "action"]) {
    const value = log[field];
    if (value === undefined || value === null || value === "")
      bad(`${path}.${field}`, "is required", Reason.MissingField);
  }
  const actor = party(log.actor, `${path}.actor`, bad);
  const target = party(log.target, `${path}.target`, bad);
  const context = stringMap(log.context, `${path}.context`, bad);
  const occurredAt = timestamp(log, path, bad);
  return create(AuditEventSchema, { id, source, action, actor, target, attributes: context, occurredAt });
}

function stringField(value: JsonValue | undefined, field: string, bad: Bad): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  bad(field, "must be a string");
  return "";
}

function party(value: JsonValue | undefined, path: string, bad: Bad) {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    bad(path, "must be an object with id, type and name");
    return undefined;
  }
  unknownFields(value, PARTY_FIELDS, `${path}.`, bad);
  return {
    id: stringField(value.id, `${path}.id`, bad),
    type: stringField(value.type, `${path}.type`, bad),
    name: stringField(value.name, `${path}.name`, bad),
  };
}

function stringMap(value: JsonValue | undefined, path: string, bad: Bad): JsonObject | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    bad(path, "must be an object of string values");
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") bad(`${path}.${key}`, "must be a string");
  }
  return Object.keys(value).length > 0 ? value : undefined;
}

function timestamp(log: JsonObject, path: string, bad: Bad) {
  const snake = log.created_at;
  const camel = log.createdAt;
  const given = (v: JsonValue | undefined) => v !== undefined && v !== null;
  if (given(snake) && given(camel)) {
    bad(`${path}.created_at`, "is given twice, as created_at and createdAt");
    return undefined;
  }
  const value = given(snake) ? snake : camel;
  if (!given(value)) return undefined;
  if (typeof value === "string") {
    try {
      return fromJson(TimestampSchema, value);
    } catch {
      // Falls through to the violation below.
    }
  }
  bad(`${path}.created_at`, 'must be an RFC 3339 date-time such as "2024-05-01T12:00:00Z"');
  return undefined;
}

function unknownFields(value: JsonObject, known: ReadonlySet<string>, prefix: string, bad: Bad): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) bad(`${prefix}${key}`, "is not a known field");
  }
}

export function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
