import { createHash } from "node:crypto";
import { type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEventSchema, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { type FieldViolation, Reason } from "../errors.js";
import type { NewEvent } from "../store/event-store.js";
import { microsToIso, timestampMicros } from "../store/time.js";
import { ID_PATTERN, limits } from "./limits.js";

/**
 * Checks one event from a request and turns it into a row-ready NewEvent. Every problem is reported, each with the
 * path of its field under `prefix` (`event.`, `events[3].`), so a caller can fix them all in one go.
 */
export function readEvent(
  event: AuditEvent,
  prefix: string,
  nowMicros: bigint,
  violations: FieldViolation[],
): NewEvent | undefined {
  const before = violations.length;
  const bad = (field: string, description: string, reason: Reason = Reason.InvalidField) =>
    violations.push({ field: prefix + field, description, reason });
  const text = (field: string, value: string, max: number) => {
    if (value.length > max) bad(field, `must be at most ${max} characters, got ${value.length}`);
    else if (!isStorableText(value)) bad(field, "must be valid UTF-8 text without NUL characters");
  };

  if (event.id !== "" && !ID_PATTERN.test(event.id)) {
    bad("id", `must be 1-${limits.idLength} characters of A-Z a-z 0-9 . _ : -`);
  }
  if (event.parentId !== "" && !ID_PATTERN.test(event.parentId)) {
    bad("parent_id", `must be 1-${limits.idLength} characters of A-Z a-z 0-9 . _ : -`);
  }
  if (event.action === "") bad("action", "is required", Reason.MissingField);
  text("action", event.action, limits.shortText);
  text("source", event.source, limits.shortText);
  text("category", event.category, limits.shortText);

  const actor = event.actor;
  if (actor) {
    text("actor.id", actor.id, limits.shortText);
    text("actor.type", actor.type, limits.shortText);
    text("actor.name", actor.name, limits.longText);
    text("actor.email", actor.email, limits.longText);
    if (actor.roles.length > limits.roles) bad("actor.roles", `must have at most ${limits.roles} entries`);
    else for (const [i, role] of actor.roles.entries()) text(`actor.roles[${i}]`, role, limits.shortText);
  }
  const target = event.target;
  if (target) {
    text("target.id", target.id, limits.shortText);
    text("target.type", target.type, limits.shortText);
    text("target.name", target.name, limits.longText);
  }
  const outcome = event.outcome;
  if (outcome) {
    if (!(outcome.status in OutcomeStatus)) bad("outcome.status", `unknown value ${outcome.status}`);
    text("outcome.code", outcome.code, limits.shortText);
    text("outcome.message", outcome.message, limits.outcomeMessage);
  }
  const request = event.request;
  if (request) {
    text("request.ip", request.ip, limits.shortText);
    text("request.method", request.method, limits.shortText);
    text("request.url", request.url, limits.url);
    text("request.user_agent", request.userAgent, limits.longText);
    text("request.correlation_id", request.correlationId, limits.shortText);
    text("request.session_id", request.sessionId, limits.shortText);
    if (!Number.isFinite(request.durationMs) || request.durationMs < 0) {
      bad("request.duration_ms", "must be a finite number of milliseconds, zero or more");
    }
  }

  const occurred = instant(event.occurredAt, "occurred_at", nowMicros, bad);
  const completed = instant(event.completedAt, "completed_at", nowMicros, bad);
  if (occurred !== undefined && completed !== undefined && completed < occurred) {
    bad("completed_at", "must not be before occurred_at");
  }

  if (violations.length > before) return undefined;
  let json: JsonObject;
  try {
    json = toJson(AuditEventSchema, event) as JsonObject;
  } catch (error) {
    // Only a Struct holding NaN or Infinity gets here: everything else toJson checks was checked above.
    bad("attributes", `cannot be represented as JSON: ${(error as Error).message}`);
    return undefined;
  }
  const attributes = json.attributes ?? null;
  if (attributes !== null) {
    const problem = attributesProblem(attributes);
    if (problem) bad("attributes", problem);
  }
  if (violations.length > before) return undefined;
  return {
    id: event.id,
    occurredAt: occurred === undefined ? undefined : microsToIso(occurred),
    completedAt: completed === undefined ? null : microsToIso(completed),
    expiresAt: null,
    source: event.source,
    action: event.action,
    category: event.category,
    actorId: actor?.id ?? "",
    actorType: actor?.type ?? "",
    actorName: actor?.name ?? "",
    actorEmail: actor?.email ?? "",
    actorRoles: actor?.roles ?? [],
    targetId: target?.id ?? "",
    targetType: target?.type ?? "",
    targetName: target?.name ?? "",
    outcomeStatus: outcome?.status ?? 0,
    outcomeCode: outcome?.code ?? "",
    outcomeMessage: outcome?.message ?? "",
    request: json.request ?? null,
    attributes,
    parentId: event.parentId,
    contentHash: contentHash(json),
  };
}

function instant(
  ts: Timestamp | undefined,
  field: string,
  nowMicros: bigint,
  bad: (field: string, description: string) => void,
): bigint | undefined {
  if (!ts) return undefined;
  if (ts.nanos < 0 || ts.nanos > 999_999_999) {
    bad(field, "nanos must be between 0 and 999999999");
    return undefined;
  }
  const micros = timestampMicros(ts);
  if (micros < limits.minMicros || micros > limits.maxMicros) {
    bad(field, "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
    return undefined;
  }
  if (micros > nowMicros + limits.futureSkewMicros) {
    bad(field, "must not be more than 24 hours in the future");
    return undefined;
  }
  return micros;
}

/** PostgreSQL text and jsonb refuse NUL and unpaired surrogates; refuse them here with a field name instead. */
export function isStorableText(value: string): boolean {
  return !value.includes("\u0000") && value.isWellFormed();
}

function attributesProblem(value: JsonValue): string | undefined {
  const size = Buffer.byteLength(JSON.stringify(value));
  if (size > limits.attributesBytes) return `must be at most ${limits.attributesBytes} bytes as JSON, got ${size}`;
  const walk = (v: JsonValue, depth: number): string | undefined => {
    if (typeof v === "string")
      return isStorableText(v) ? undefined : "must hold valid UTF-8 text without NUL characters";
    if (v === null || typeof v !== "object") return undefined;
    // Objects and arrays are the levels; the scalars inside the deepest one are not another level.
    if (depth > limits.attributesDepth) return `must nest at most ${limits.attributesDepth} levels deep`;
    if (Array.isArray(v)) {
      for (const item of v) {
        const p = walk(item, depth + 1);
        if (p) return p;
      }
    } else {
      for (const [key, item] of Object.entries(v)) {
        if (!isStorableText(key)) return "keys must be valid UTF-8 text without NUL characters";
        const p = walk(item as JsonValue, depth + 1);
        if (p) return p;
      }
    }
    return undefined;
  };
  return walk(value, 1);
}

/**
 * SHA-256 of the event as the client sent it, output-only fields left out and object keys sorted, so a replay with
 * the same content hashes the same whatever the wire format or key order.
 */
function contentHash(json: JsonObject): Buffer {
  const { tenant, sequence, receivedAt, expiresAt, ...content } = json;
  return createHash("sha256").update(canonicalJson(content)).digest();
}

export function canonicalJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as JsonValue)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
