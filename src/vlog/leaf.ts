import type { DescField, DescMessage, JsonObject } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence, type Timestamp } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { canonicalJson } from "../service/event-input.js";
import { rowToEvent } from "../service/event-output.js";
import type { EventRow } from "../store/event-store.js";

/**
 * An event's leaf data: the RFC 8785 (JCS) canonical JSON of its proto3 JSON form exactly as List returns it over
 * the Connect protocol — rowToEvent's message as toJson writes it with the options connect-es uses (lowerCamelCase
 * names, default values omitted, int64 as strings, enums by name, Timestamps in RFC 3339 UTC), keys sorted by UTF-16
 * code units, no whitespace, as UTF-8. Any client can rebuild it from a listed event (scripts/verify.ts does, with its
 * own code).
 *
 * Written straight from the message, fields in jsonName order taken from the descriptor, rather than as
 * canonicalJson(toJson(...)), which does the same generically and was the main per-event cost of an append with the
 * log on (docs/performance.md). test/vlog/leaf.test.ts checks the two equal on generated events. Service floor (it needs the contract's message),
 * handed to the store's TreeLog as a function.
 */
export function eventLeafData(row: EventRow): Uint8Array {
  return Buffer.from(eventLeafJson(rowToEvent(row)));
}

export function eventLeafJson(event: AuditEvent): string {
  return messageJson(AuditEventSchema, event as unknown as Record<string, unknown>);
}

/** A field to write: its descriptor and its JSON key, quoted, with the colon. */
interface Writable {
  field: DescField;
  key: string;
}

/** Each message's fields in JCS key order: jsonName by UTF-16 code units (what a plain sort compares). */
const ordered = new Map<DescMessage, Writable[]>();

function fieldsOf(desc: DescMessage): Writable[] {
  let fields = ordered.get(desc);
  if (!fields) {
    fields = [...desc.fields]
      .sort((a, b) => (a.jsonName < b.jsonName ? -1 : a.jsonName > b.jsonName ? 1 : 0))
      .map((field) => ({ field, key: `${JSON.stringify(field.jsonName)}:` }));
    ordered.set(desc, fields);
  }
  return fields;
}

function messageJson(desc: DescMessage, message: Record<string, unknown>): string {
  if (desc.typeName === "google.protobuf.Timestamp") return `"${timestampJson(message as unknown as Timestamp)}"`;
  let out = "";
  for (const { field, key } of fieldsOf(desc)) {
    const json = fieldJson(field, message[field.localName]);
    if (json !== undefined) out += out === "" ? key + json : `,${key}${json}`;
  }
  return `{${out}}`;
}

/** A field's JSON, or undefined when proto3 JSON leaves it out (a default value, an unset message). */
function fieldJson(field: DescField, value: unknown): string | undefined {
  switch (field.fieldKind) {
    case "scalar":
      // Object.is: toJson writes -0, which is not the default.
      return Object.is(value, zeroOf(field.scalar)) && implicit(field) ? undefined : scalarJson(field.scalar, value);
    case "enum":
      return value === 0 && implicit(field)
        ? undefined
        : JSON.stringify(field.enum.values.find((v) => v.number === value)?.name ?? value);
    case "list": {
      const list = value as unknown[];
      if (list.length === 0) return undefined;
      if (field.listKind !== "scalar") throw new Error(`leaf JSON: list field ${field.name} of ${field.listKind}`);
      return `[${list.map((v) => scalarJson(field.scalar, v)).join(",")}]`;
    }
    case "message":
      if (value === undefined) return undefined;
      // protobuf-es holds a google.protobuf.Struct field as the JSON object itself.
      if (field.message.typeName === "google.protobuf.Struct") return canonicalJson(value as JsonObject);
      return messageJson(field.message, value as Record<string, unknown>);
    default:
      throw new Error(`leaf JSON: field ${field.name} is a ${field.fieldKind}`);
  }
}

/** proto3 fields without `optional`: a default value is not written. */
function implicit(field: DescField): boolean {
  return field.presence === FeatureSet_FieldPresence.IMPLICIT;
}

function zeroOf(type: ScalarType): unknown {
  switch (type) {
    case ScalarType.STRING:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 0n;
    case ScalarType.BYTES:
      throw new Error("leaf JSON: bytes fields are not written");
    default:
      return 0;
  }
}

function scalarJson(type: ScalarType, value: unknown): string {
  switch (type) {
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return `"${value}"`;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      // proto3 JSON writes the non-finite numbers as strings; JSON.stringify writes -0 as 0, as JCS does.
      return Number.isFinite(value) ? JSON.stringify(value) : `"${value}"`;
    default:
      return JSON.stringify(value);
  }
}

/** RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as toJson writes a Timestamp. */
function timestampJson(ts: Timestamp): string {
  const base = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  const nanos = ts.nanos;
  if (nanos === 0) return `${base}Z`;
  const digits = String(nanos).padStart(9, "0");
  if (nanos % 1_000_000 === 0) return `${base}.${digits.slice(0, 3)}Z`;
  if (nanos % 1_000 === 0) return `${base}.${digits.slice(0, 6)}Z`;
  return `${base}.${digits}Z`;
}
