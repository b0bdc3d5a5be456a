import { hash } from "node:crypto";
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, OutcomeStatus, type RequestInfo } from "../../gen/audit/v1/event_pb.js";
import { canonicalContent, structJson } from "../codec/event-content.js";
import { type FieldViolation, Reason } from "../errors.js";
import type { NewEvent } from "../store/event-store.js";
import { isStorableText } from "../store/text.js";
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
  // A class rather than closures: this runs for every event of every write, and closures cost a little each time.
  const check = new Checks(violations, prefix);

  if (event.id !== "" && !ID_PATTERN.test(event.id)) {
    check.bad("id", `must be 1-${limits.idLength} characters of A-Z a-z 0-9 . _ : -`);
  }
  if (event.parentId !== "" && !ID_PATTERN.test(event.parentId)) {
    check.bad("parent_id", `must be 1-${limits.idLength} characters of A-Z a-z 0-9 . _ : -`);
  }
  if (event.action === "") check.bad("action", "is required", Reason.MissingField);
  check.text("action", event.action, limits.shortText);
  check.text("source", event.source, limits.shortText);
  check.text("category", event.category, limits.shortText);

  const actor = event.actor;
  if (actor) {
    check.text("actor.id", actor.id, limits.shortText);
    check.text("actor.type", actor.type, limits.shortText);
    check.text("actor.name", actor.name, limits.longText);
    check.text("actor.email", actor.email, limits.longText);
    if (actor.roles.length > limits.roles) check.bad("actor.roles", `must have at most ${limits.roles} entries`);
    else for (const [i, role] of actor.roles.entries()) check.text(`actor.roles[${i}]`, role, limits.shortText);
  }
  const target = event.target;
  if (target) {
    check.text("target.id", target.id, limits.shortText);
    check.text("target.type", target.type, limits.shortText);
    check.text("target.name", target.name, limits.longText);
  }
  const outcome = event.outcome;
  if (outcome) {
    if (!(outcome.status in OutcomeStatus)) check.bad("outcome.status", `unknown value ${outcome.status}`);
    check.text("outcome.code", outcome.code, limits.shortText);
    check.text("outcome.message", outcome.message, limits.outcomeMessage);
  }
  const request = event.request;
  if (request) {
    check.text("request.ip", request.ip, limits.shortText);
    check.text("request.method", request.method, limits.shortText);
    check.text("request.url", request.url, limits.url);
    check.text("request.user_agent", request.userAgent, limits.longText);
    check.text("request.correlation_id", request.correlationId, limits.shortText);
    check.text("request.session_id", request.sessionId, limits.shortText);
    if (!Number.isFinite(request.durationMs) || request.durationMs < 0) {
      check.bad("request.duration_ms", "must be a finite number of milliseconds, zero or more");
    }
  }

  const occurred = instant(event.occurredAt, "occurred_at", nowMicros, check);
  const completed = instant(event.completedAt, "completed_at", nowMicros, check);
  if (occurred !== undefined && completed !== undefined && completed < occurred) {
    check.bad("completed_at", "must not be before occurred_at");
  }

  if (violations.length > before) return undefined;
  const attributes = event.attributes ?? null;
  if (attributes !== null) {
    // Depth first: canonicalJson recurses, and must only be given what is known to be shallow. Its text is made once
    // (structJson) for the size check, the content hash and the event's leaf in the verifiable log.
    const problem = valueProblem(attributes, 1) ?? sizeProblem(structJson(attributes));
    if (problem) check.bad("attributes", problem);
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
    request: request ? requestJson(request) : null,
    attributes,
    parentId: event.parentId,
    // Taken as latin1 text and copied into a Buffer: a Buffer straight from crypto.hash costs more than the hash.
    contentHash: Buffer.from(hash("sha256", canonicalContent(event), "binary"), "binary"),
  };
}

class Checks {
  constructor(
    private readonly violations: FieldViolation[],
    private readonly prefix: string,
  ) {}

  bad(field: string, description: string, reason: Reason = Reason.InvalidField) {
    this.violations.push({ field: this.prefix + field, description, reason });
  }

  text(field: string, value: string, max: number) {
    if (value.length > max) this.bad(field, `must be at most ${max} characters, got ${value.length}`);
    else if (!isStorableText(value)) this.bad(field, "must be valid UTF-8 text without NUL characters");
  }
}

function instant(ts: Timestamp | undefined, field: string, nowMicros: bigint, check: Checks): bigint | undefined {
  if (!ts) return undefined;
  if (ts.nanos < 0 || ts.nanos > 999_999_999) {
    check.bad(field, "nanos must be between 0 and 999999999");
    return undefined;
  }
  const micros = timestampMicros(ts);
  if (micros < limits.minMicros || micros > limits.maxMicros) {
    check.bad(field, "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z");
    return undefined;
  }
  if (micros > nowMicros + limits.futureSkewMicros) {
    check.bad(field, "must not be more than 24 hours in the future");
    return undefined;
  }
  return micros;
}

/** `json` is the attributes as canonicalJson writes them: as long as JSON.stringify's, keys in another order. */
function sizeProblem(json: string): string | undefined {
  const size = Buffer.byteLength(json);
  return size > limits.attributesBytes
    ? `must be at most ${limits.attributesBytes} bytes as JSON, got ${size}`
    : undefined;
}

/** What makes an attribute value unstorable: text PostgreSQL refuses, numbers JSON lacks, too deep a nesting. */
function valueProblem(v: JsonValue, depth: number): string | undefined {
  if (typeof v === "string") return isStorableText(v) ? undefined : "must hold valid UTF-8 text without NUL characters";
  if (typeof v === "number") return Number.isFinite(v) ? undefined : "must hold only finite numbers, as JSON does";
  if (v === null || typeof v !== "object") return undefined;
  // Objects and arrays are the levels; the scalars inside the deepest one are not another level.
  if (depth > limits.attributesDepth) return `must nest at most ${limits.attributesDepth} levels deep`;
  if (Array.isArray(v)) {
    for (const item of v) {
      const p = valueProblem(item, depth + 1);
      if (p) return p;
    }
  } else {
    for (const [key, item] of Object.entries(v)) {
      if (!isStorableText(key)) return "keys must be valid UTF-8 text without NUL characters";
      const p = valueProblem(item as JsonValue, depth + 1);
      if (p) return p;
    }
  }
  return undefined;
}

/**
 * The event with request.correlation_id set to the call's trace id, when the client gave none: the log then links
 * each event to the trace of the call that wrote it. Left out of contentHash, which covers what the client sent, so
 * a retry under another trace is still the same event (and gets the stored one back).
 */
export function withCorrelation(event: NewEvent, traceId: string): NewEvent {
  const request = event.request as JsonObject | null;
  if (traceId === "" || (request && typeof request.correlationId === "string")) return event;
  event.request = { ...request, correlationId: traceId };
  return event;
}

/** RequestInfo as toJson writes it (and as it is stored): set fields only, by their JSON names. */
function requestJson(r: RequestInfo): JsonObject {
  const json: JsonObject = {};
  if (r.ip !== "") json.ip = r.ip;
  if (r.method !== "") json.method = r.method;
  if (r.url !== "") json.url = r.url;
  if (r.userAgent !== "") json.userAgent = r.userAgent;
  if (!Object.is(r.durationMs, 0)) json.durationMs = r.durationMs;
  if (r.correlationId !== "") json.correlationId = r.correlationId;
  if (r.sessionId !== "") json.sessionId = r.sessionId;
  return json;
}
