import type { JsonObject, JsonValue, Message } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { AuditEvent } from "../../gen/audit/v1/event_pb.js";
import { EVENT, type FieldSpec, Kind, type MessageSpec } from "./event-fields.js";

/**
 * What the idempotency hash is taken of: the event as the client sent it, in canonical JSON. By definition that is
 * canonicalJson(toJson(event)) without the fields marked OUTPUT_ONLY (tenant, sequence, received_at, expires_at), so
 * a replay hashes the same whatever its wire format or key order. It is written here from the descriptors' field
 * tables (event-fields.ts), keys already in sorted order, because toJson and the generic sort were half the cost of
 * reading an event; test/core/event-content.test.ts checks the two agree on events generated from the descriptors.
 * Valid events only (readEvent's checks first): timestamps in range, finite attribute numbers.
 *
 * `known` is the canonical JSON of one Struct value of the event, already made (readEvent makes the attributes' to
 * check their size), so it is not made twice.
 */
export function canonicalContent(e: AuditEvent, known?: { value: JsonObject; json: string }): string {
  return object(EVENT as MessageSpec, e, known);
}

function object(spec: MessageSpec, m: Message, known: { value: JsonObject; json: string } | undefined): string {
  const values = m as unknown as Record<string, unknown>;
  let out = "{";
  for (const f of spec.jsonOrder) {
    if (f.outputOnly) continue;
    const json = valueJson(f, values[f.name], known);
    if (json !== undefined) out += `${out.length > 1 ? "," : ""}"${f.jsonName}":${json}`;
  }
  return `${out}}`;
}

/** A field's value as proto3 JSON writes it, or undefined when it leaves the field out (its default value). */
function valueJson(f: FieldSpec, value: unknown, known: { value: JsonObject; json: string } | undefined) {
  switch (f.kind) {
    case Kind.String:
      return value === "" ? undefined : JSON.stringify(value);
    case Kind.Strings: {
      const list = value as string[];
      return list.length === 0 ? undefined : `[${list.map((s) => JSON.stringify(s)).join(",")}]`;
    }
    case Kind.Bool:
      return value === true ? "true" : undefined;
    case Kind.Int32:
      return value === 0 ? undefined : String(value);
    case Kind.Enum:
      // An open enum's unknown value is written as its number.
      return value === 0 ? undefined : JSON.stringify(f.enum?.value[value as number]?.name ?? value);
    case Kind.Int64:
      return value === 0n ? undefined : `"${value}"`;
    case Kind.Double:
      return Object.is(value, 0) ? undefined : doubleJson(value as number);
    case Kind.Message: {
      if (value === undefined) return undefined;
      const spec = f.message as MessageSpec;
      return spec.timestamp ? `"${timestampJson(value as Timestamp)}"` : object(spec, value as Message, known);
    }
    case Kind.Messages: {
      const list = value as Message[];
      const spec = f.message as MessageSpec;
      return list.length === 0 ? undefined : `[${list.map((item) => object(spec, item, known)).join(",")}]`;
    }
    case Kind.Struct:
      if (value === undefined) return undefined;
      return value === known?.value ? known.json : canonicalJson(value as JsonObject);
  }
}

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
  return new Date(Number(ts.seconds) * 1000).toISOString().replace(".000Z", `${fraction}Z`);
}

/** JSON with object keys sorted at every level: one text per value, whatever order its keys came in. */
export function canonicalJson(value: JsonValue): string {
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
    out += `${i === 0 ? "" : ","}${JSON.stringify(key)}:${canonicalJson(value[key] as JsonValue)}`;
  }
  return `${out}}`;
}
