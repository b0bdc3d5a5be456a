import type { JsonObject, JsonValue, Message } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "../../gen/audit/v1/event_pb.js";
import { isoSeconds } from "../store/time.js";
import { EVENT, type FieldSpec, type Kind, type MessageSpec } from "./event-fields.js";

/**
 * What the idempotency hash is taken of: the event as the client sent it, in canonical JSON. By definition that is
 * canonicalJson(toJson(event)) without the fields marked OUTPUT_ONLY (tenant, sequence, received_at, expires_at), so
 * a replay hashes the same whatever its wire format or key order. It is written here from the descriptors' field
 * tables (event-fields.ts), keys already in sorted order, without toJson and a generic sort (their cost:
 * docs/performance.md); test/core/event-content.test.ts checks the two agree on events generated from the descriptors.
 * Valid events only (readEvent's checks first): timestamps in range, finite attribute numbers.
 */
export function canonicalContent(e: AuditEvent): string {
  return object(EVENT as MessageSpec, e, false);
}

/**
 * The whole event in canonical JSON, output fields included: canonicalJson(toJson(event)), the event as List returns
 * it over Connect, which the verifiable log's leaves hash (src/vlog/leaf.ts).
 */
export function canonicalEvent(e: AuditEvent): string {
  return object(EVENT as MessageSpec, e, true);
}

function object(spec: MessageSpec, m: Message, all: boolean): string {
  const values = m as unknown as Record<string, unknown>;
  const fields = all ? spec.jsonOrder : spec.contentOrder;
  let out = "";
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] as FieldSpec;
    const value = values[f.name];
    let json: string;
    // Each kind left out at its default value, as proto3 JSON leaves it out.
    // Literal labels (each pinned to its Kind by `satisfies`) let V8 jump to the case through a table.
    switch (f.kind) {
      case 0 satisfies typeof Kind.String:
        if (value === "") continue;
        json = jsonString(value as string);
        break;
      case 1 satisfies typeof Kind.Strings: {
        const list = value as string[];
        if (list.length === 0) continue;
        json = `[${jsonString(list[0] as string)}`;
        for (let j = 1; j < list.length; j++) json += `,${jsonString(list[j] as string)}`;
        json += "]";
        break;
      }
      case 2 satisfies typeof Kind.Bool:
        if (value !== true) continue;
        json = "true";
        break;
      case 3 satisfies typeof Kind.Int32:
        if (value === 0) continue;
        json = String(value);
        break;
      case 4 satisfies typeof Kind.Enum:
        if (value === 0) continue;
        // An open enum's unknown value is written as its number.
        json = f.enumJson?.[value as number] ?? String(value);
        break;
      case 5 satisfies typeof Kind.Int64:
        if (value === 0n) continue;
        json = `"${value}"`;
        break;
      case 6 satisfies typeof Kind.Double:
        // -0 is not proto3's zero value, and is written.
        if (Object.is(value, 0)) continue;
        json = doubleJson(value as number);
        break;
      case 7 satisfies typeof Kind.Message: {
        if (value === undefined) continue;
        const message = f.message as MessageSpec;
        json = message.timestamp ? `"${timestampJson(value as Timestamp)}"` : object(message, value as Message, all);
        break;
      }
      case 8 satisfies typeof Kind.Messages: {
        if ((value as Message[]).length === 0) continue;
        const message = f.message as MessageSpec;
        json = `[${(value as Message[]).map((item) => object(message, item, all)).join(",")}]`;
        break;
      }
      case 9 satisfies typeof Kind.Struct:
        if (value === undefined) continue;
        json = structJson(value as JsonObject);
        break;
      default:
        continue;
    }
    out += out === "" ? f.jsonKey : `,${f.jsonKey}`;
    out += json;
  }
  return `{${out}}`;
}

/**
 * The canonical JSON of a Struct value (an event's attributes), made once per value: readEvent makes it to check the
 * attributes' size, the content hash and the event's leaf in the verifiable log, written when it is stored, take it
 * again. By the value's identity, so it holds only while a decoded value is not changed, which nothing does: a
 * request's messages are read, never edited, and a stored row's attributes are the request's.
 */
export function structJson(value: JsonObject): string {
  let json = structTexts.get(value);
  if (json === undefined) {
    json = canonicalJson(value);
    structTexts.set(value, json);
  }
  return json;
}

/** structJson's texts; an entry goes with its value. */
const structTexts = new WeakMap<JsonObject, string>();

/** A double as proto3 JSON writes it: a number, or a string for the values JSON has no number for. */
function doubleJson(value: number): string {
  return Number.isFinite(value) ? JSON.stringify(value) : `"${value}"`;
}

/** RFC 3339 as proto3 JSON writes a Timestamp: 0, 3, 6 or 9 fractional digits. Valid timestamps only. */
function timestampJson(ts: Timestamp): string {
  let fraction = "";
  if (ts.nanos > 0) {
    const digits = String(ts.nanos + 1_000_000_000).slice(1);
    fraction = digits.endsWith("000000") ? digits.slice(0, 3) : digits.endsWith("000") ? digits.slice(0, 6) : digits;
    fraction = `.${fraction}`;
  }
  return `${isoSeconds(Number(ts.seconds))}${fraction}Z`;
}

/** Any string character JSON.stringify writes otherwise than as itself (surrogates, paired or not, to be safe). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what JSON escapes.
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON.stringify of a string: the string in quotes when nothing in it is escaped, as almost every value of an event
 * is, which is a third of JSON.stringify's time per call; JSON.stringify itself otherwise.
 */
export function jsonString(value: string): string {
  return ESCAPED.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/** JSON with object keys sorted at every level: one text per value, whatever order its keys came in. */
export function canonicalJson(value: JsonValue): string {
  if (typeof value === "string") return jsonString(value);
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i] as JsonValue);
    return `${out}]`;
  }
  const keys = Object.keys(value).sort();
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    out += `${i === 0 ? "" : ","}${jsonString(key)}:${canonicalJson(value[key] as JsonValue)}`;
  }
  return `${out}}`;
}
