import type { JsonValue } from "@bufbuild/protobuf";
import { type AuditEvent, OutcomeStatus } from "../../../gen/audit/v1/event_pb.js";
import { escapeXml } from "../xml.js";

/** A response format and the media type it is sent as. */
export interface Format {
  kind: "json" | "xml";
  mediaType: string;
}

const OFFERED: Record<string, Format> = {
  "application/json": { kind: "json", mediaType: "application/json" },
  "application/xml": { kind: "xml", mediaType: "application/xml" },
  "text/xml": { kind: "xml", mediaType: "text/xml" },
  "application/*": { kind: "json", mediaType: "application/json" },
  "*/*": { kind: "json", mediaType: "application/json" },
};
export const JSON_FORMAT = OFFERED["application/json"] as Format;

/**
 * The format the Accept header prefers: highest q first, then an exact type over a wildcard, then header order.
 * JSON when there is no Accept header; undefined when nothing offered is acceptable.
 */
export function negotiate(accept: string | undefined): Format | undefined {
  if (!accept?.trim()) return JSON_FORMAT;
  let best: { format: Format; q: number; exact: boolean } | undefined;
  for (const range of accept.split(",")) {
    const [type = "", ...params] = range.split(";").map((p) => p.trim().toLowerCase());
    const format = OFFERED[type];
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    if (!format || !(q > 0)) continue;
    const exact = !type.includes("*");
    if (!best || q > best.q || (q === best.q && exact && !best.exact)) best = { format, q, exact };
  }
  return best?.format;
}

/** One audit in the fields and order of the document's AuditResult; null where the event has nothing. */
export type AuditRecord = [name: string, value: string | number | null][];

/**
 * id: the event's sequence in its tenant; accountId: the tenant's numeric id; occurredOn: epoch milliseconds;
 * userId: actor.id when it is a number (the document's type), else null; eventType: action; eventResultCode:
 * TRUE or FALSE from the outcome; eventInput1-3 and eventOutput1-3: attributes of those names.
 */
export function toRecord(event: AuditEvent, accountId: number): AuditRecord {
  const outcome = event.outcome;
  const failed = outcome?.status === OutcomeStatus.FAILURE;
  const text = (value: string | undefined) => (value ? value : null);
  const attribute = (name: string) => {
    const value = event.attributes?.[name];
    if (value === undefined || value === null) return null;
    return typeof value === "string" ? value : JSON.stringify(value as JsonValue);
  };
  const userId = event.actor?.id ?? "";
  const occurred = event.occurredAt;
  return [
    ["id", Number(event.sequence)],
    ["accountId", accountId],
    ["occurredOn", occurred ? Number(occurred.seconds) * 1000 + Math.floor(occurred.nanos / 1_000_000) : null],
    ["userId", /^\d{1,15}$/.test(userId) ? Number(userId) : null],
    ["username", text(event.actor?.name)],
    ["sessionId", text(event.request?.sessionId)],
    ["entityId", text(event.target?.id)],
    ["eventType", event.action],
    [
      "eventResultCode",
      outcome?.status === OutcomeStatus.SUCCESS ? "TRUE" : outcome?.status === OutcomeStatus.FAILURE ? "FALSE" : null,
    ],
    ["eventResultFailure", failed ? (text(outcome?.message) ?? text(outcome?.code)) : null],
    ...[1, 2, 3].map((n): [string, string | null] => [`eventInput${n}`, attribute(`eventInput${n}`)]),
    ...[1, 2, 3].map((n): [string, string | null] => [`eventOutput${n}`, attribute(`eventOutput${n}`)]),
  ];
}

export function renderAudits(records: AuditRecord[], format: Format): string {
  if (format.kind === "json") return JSON.stringify({ audit: records.map((r) => Object.fromEntries(r)) });
  return xmlDocument(`<auditResult>${records.map((r) => `<audit>${xmlFields(r)}</audit>`).join("")}</auditResult>`);
}

export function renderError(format: Format, code: string, message: string, parameter?: string): string {
  const fields: AuditRecord = [
    ["code", code],
    ["message", message],
    ["parameter", parameter ?? null],
  ];
  if (format.kind === "json") {
    return JSON.stringify({ error: Object.fromEntries(fields.filter(([, v]) => v !== null)) });
  }
  return xmlDocument(`<error>${xmlFields(fields)}</error>`);
}

function xmlDocument(root: string): string {
  return `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>${root}`;
}

/** Elements in order; a null value is left out, as JAXB leaves out a null property. */
function xmlFields(fields: AuditRecord): string {
  return fields
    .filter(([, value]) => value !== null)
    .map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`)
    .join("");
}
