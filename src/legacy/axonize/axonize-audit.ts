import type { JsonObject, JsonValue, MessageInitShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, type AuditEventSchema, OutcomeStatus } from "../../../gen/audit/v1/event_pb.js";
import { Reason } from "../../errors.js";
import { parseDateTime } from "../../service/date-time.js";
import { timestampToIso } from "../../store/time.js";

export const CATEGORIES = ["Devices", "Products", "Rules", "Users", "Applications", "Events", "Auth"] as const;
export const SOURCE_TYPES = ["Unknown", "Portal", "Rules Engine", "XStream", "Gateways"] as const;

/** How each request property is read. `id` is not in the document: it lets a client make a POST idempotent. */
const PROPERTIES = {
  id: "text",
  entityName: "text",
  entityId: "text",
  action: "text",
  category: "category",
  userEmail: "text",
  userId: "text",
  requestDateTime: "time",
  responseDateTime: "time",
  application: "text",
  tenant: "text",
  correlationId: "text",
  ip: "text",
  result: "result",
  requestDurationMs: "number",
  requestUrl: "text",
  actionDisplay: "text",
  categoryDisplay: "text",
  userName: "text",
  roles: "texts",
  sourceName: "text",
  sourceType: "sourceType",
  appId: "text",
  additionalInfo: "keyValues",
} as const;
type Property = keyof typeof PROPERTIES;
const MANDATORY: Property[] = ["entityName", "entityId", "action", "category"];
/** Properties of the response that only the server sets. */
const SERVER_SET = ["isSuccessful", "createDate", "createUser", "updateDate", "updateUser"];

/**
 * Property names as ASP.NET reads them: case-insensitively, which is also why `requestURL` and `requestUrl` are
 * the same property.
 */
const BY_LOWER_NAME = new Map<string, Property>(
  (Object.keys(PROPERTIES) as Property[]).map((name) => [name.toLowerCase(), name]),
);

/** 2xx results by HttpStatusCode name. */
const SUCCESS_NAMES = new Set(
  [
    "OK",
    "Created",
    "Accepted",
    "NonAuthoritativeInformation",
    "NoContent",
    "ResetContent",
    "PartialContent",
    "MultiStatus",
    "AlreadyReported",
    "IMUsed",
  ].map((n) => n.toLowerCase()),
);

export interface KeyValue {
  key: string;
  value: string | null;
}

/** A request that passed this API's own checks, each property as the client sent it. */
export interface AxonizeAudit {
  text: Partial<Record<Property, string>>;
  times: Partial<Record<"requestDateTime" | "responseDateTime", Timestamp>>;
  result?: string | number;
  requestDurationMs?: number;
  roles?: string[];
  additionalInfo?: KeyValue[];
}

export interface Violation {
  target: string;
  message: string;
  reason: Reason;
}

/** Reads a request body's properties, reporting every problem with the property it concerns. */
export function readAudit(body: Record<string, unknown>): AxonizeAudit | Violation[] {
  const violations: Violation[] = [];
  const bad = (target: string, message: string, reason: Reason = Reason.InvalidField) =>
    violations.push({ target, message: `${target} ${message}`, reason });
  const audit: AxonizeAudit = { text: {}, times: {} };
  const seen = new Map<Property, string>();

  for (const [name, value] of Object.entries(body)) {
    // OData instance annotations ("@odata.context", "x@odata.type") describe the payload; they are not data.
    if (name.includes("@")) continue;
    const property = BY_LOWER_NAME.get(name.toLowerCase());
    if (!property) {
      if (SERVER_SET.some((s) => s.toLowerCase() === name.toLowerCase())) bad(name, "is set by the server");
      else bad(name, "is not a property of Audit");
      continue;
    }
    const earlier = seen.get(property);
    if (earlier !== undefined) {
      bad(name, `repeats ${earlier} (property names are case-insensitive)`);
      continue;
    }
    seen.set(property, name);
    if (value === null) continue;
    const kind = PROPERTIES[property];
    if (kind === "texts") {
      if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) bad(name, "must be an array of strings");
      else audit.roles = value as string[];
    } else if (kind === "keyValues") {
      const entries = readKeyValues(name, value, bad);
      if (entries) audit.additionalInfo = entries;
    } else if (kind === "number") {
      const ms = typeof value === "number" ? value : typeof value === "string" ? decimal(value) : undefined;
      if (ms === undefined) bad(name, "must be a number of milliseconds");
      else audit.requestDurationMs = ms;
    } else if (kind === "result") {
      if (typeof value === "string" || (typeof value === "number" && Number.isInteger(value))) {
        if (value !== "") audit.result = value;
      } else bad(name, "must be a status code name or number, such as OK or 200");
    } else if (typeof value !== "string") {
      bad(name, "must be a string");
    } else if (kind === "category") {
      const category = CATEGORIES.find((c) => c.toLowerCase() === value.toLowerCase());
      if (category) audit.text.category = category;
      else bad(name, `must be one of ${CATEGORIES.join(", ")}`);
    } else if (kind === "sourceType") {
      const squash = (s: string) => s.replace(/ /g, "").toLowerCase();
      const sourceType = SOURCE_TYPES.find((t) => squash(t) === squash(value));
      if (sourceType) audit.text.sourceType = sourceType;
      else bad(name, `must be one of ${SOURCE_TYPES.join(", ")}`);
    } else if (kind === "time") {
      const ts = parseDateTime(value);
      if (!ts) bad(name, "must be an ISO 8601 date and time, such as 2018-06-17T11:55:01.8164737Z");
      else {
        audit.times[property as "requestDateTime" | "responseDateTime"] = ts;
        audit.text[property] = value;
      }
    } else {
      audit.text[property] = value;
    }
  }
  for (const name of MANDATORY) {
    if (!audit.text[name] && !violations.some((v) => v.target === seen.get(name))) {
      bad(name, "is mandatory", Reason.MissingField);
    }
  }
  return violations.length > 0 ? violations : audit;
}

function readKeyValues(
  name: string,
  value: unknown,
  bad: (target: string, message: string) => void,
): KeyValue[] | undefined {
  if (!Array.isArray(value)) {
    bad(name, "must be an array of {key, value} objects");
    return undefined;
  }
  const entries: KeyValue[] = [];
  for (const [i, item] of value.entries()) {
    const at = `${name}[${i}]`;
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      bad(at, "must be a {key, value} object");
      continue;
    }
    let key: unknown;
    let entryValue: unknown = null;
    for (const [k, v] of Object.entries(item)) {
      if (k.toLowerCase() === "key") key = v;
      else if (k.toLowerCase() === "value") entryValue = v;
      else bad(`${at}.${k}`, "is not a property of a key/value pair");
    }
    if (typeof key !== "string" || key === "") bad(`${at}.key`, "must be a non-empty string");
    else if (entryValue !== null && typeof entryValue !== "string") bad(`${at}.value`, "must be a string or null");
    else entries.push({ key, value: entryValue });
  }
  return entries;
}

function decimal(text: string): number | undefined {
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text.trim()) ? Number(text) : undefined;
}

/** Whether a result names a 2xx status: `OK`, `Created`, `200`, 204... */
export function isSuccessful(result: string | number | undefined): boolean {
  if (result === undefined) return false;
  const text = String(result).trim();
  return /^2\d\d$/.test(text) || SUCCESS_NAMES.has(text.toLowerCase());
}

/** The AuditEvent an Axonize audit is stored as. `appId` is the property or, failing that, the header. */
export function toEvent(audit: AxonizeAudit, appId: string | undefined): MessageInitShape<typeof AuditEventSchema> {
  const t = audit.text;
  const attributes: JsonObject = {};
  for (const name of ["application", "tenant", "actionDisplay", "categoryDisplay", "sourceType"] as const) {
    if (t[name] !== undefined) attributes[name] = t[name];
  }
  if (appId !== undefined) attributes.appId = appId;
  if (audit.additionalInfo) attributes.additionalInfo = audit.additionalInfo as unknown as JsonValue;
  const hasActor = [t.userId, t.userEmail, t.userName, audit.roles].some((v) => v !== undefined);
  const hasRequest = [t.ip, t.requestUrl, t.correlationId, audit.requestDurationMs].some((v) => v !== undefined);
  return {
    id: t.id ?? "",
    action: t.action ?? "",
    category: t.category ?? "",
    source: t.sourceName ?? "",
    target: { id: t.entityId ?? "", name: t.entityName ?? "", type: t.category ?? "" },
    actor: hasActor
      ? { id: t.userId ?? "", email: t.userEmail ?? "", name: t.userName ?? "", roles: audit.roles ?? [] }
      : undefined,
    occurredAt: audit.times.requestDateTime,
    completedAt: audit.times.responseDateTime,
    request: hasRequest
      ? {
          ip: t.ip ?? "",
          url: t.requestUrl ?? "",
          correlationId: t.correlationId ?? "",
          durationMs: audit.requestDurationMs ?? 0,
        }
      : undefined,
    outcome:
      audit.result === undefined
        ? undefined
        : {
            code: String(audit.result),
            status: isSuccessful(audit.result) ? OutcomeStatus.SUCCESS : OutcomeStatus.FAILURE,
          },
    attributes: Object.keys(attributes).length > 0 ? attributes : undefined,
  };
}

/**
 * The 201 body: every request property echoed as sent (absent ones as null, with the document's defaults for
 * userEmail and sourceType), then what the server set, in the order of the document's example.
 */
export function echo(audit: AxonizeAudit, stored: AuditEvent, appId: string | undefined, context: string): JsonObject {
  const t = audit.text;
  const or = (value: JsonValue | undefined) => value ?? null;
  return {
    "@odata.context": context,
    entityName: or(t.entityName),
    entityId: or(t.entityId),
    action: or(t.action),
    category: or(t.category),
    userEmail: t.userEmail ?? "System",
    userId: or(t.userId),
    requestDateTime: or(t.requestDateTime),
    responseDateTime: or(t.responseDateTime),
    application: or(t.application),
    tenant: or(t.tenant),
    correlationId: or(t.correlationId),
    ip: or(t.ip),
    isSuccessful: isSuccessful(audit.result),
    result: or(audit.result),
    requestDurationMs: or(audit.requestDurationMs),
    requestUrl: or(t.requestUrl),
    actionDisplay: or(t.actionDisplay),
    categoryDisplay: or(t.categoryDisplay),
    userName: or(t.userName),
    roles: or(audit.roles),
    sourceName: or(t.sourceName),
    sourceType: t.sourceType ?? "Unknown",
    id: stored.id,
    appId: or(appId),
    createDate: stored.receivedAt ? timestampToIso(stored.receivedAt) : null,
    createUser: null,
    updateDate: "0001-01-01T00:00:00Z",
    updateUser: null,
    additionalInfo: audit.additionalInfo ? (audit.additionalInfo as unknown as JsonValue) : null,
  };
}
