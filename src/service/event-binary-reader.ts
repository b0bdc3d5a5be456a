import { isUtf8 } from "node:buffer";
import { type DescMessage, type JsonObject, type JsonValue, type Message, ScalarType } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  type Actor,
  type AuditEvent,
  AuditEventSchema,
  type Outcome,
  type RequestInfo,
  type Target,
} from "../../gen/audit/v1/event_pb.js";
import { BIT64, IMPLICIT_PRESENCE, LEN, VARINT } from "./wire-format.js";

/**
 * Reads requests made of AuditEvents (CreateRequest, BatchCreateRequest) from the protobuf binary form by hand, into
 * the plain objects fromBinary makes. fromBinary is exact but general, and was the largest single cost of a
 * BatchCreate after the events' own checks: a reflective reader per field, a Struct message per attributes value
 * turned into JSON afterwards.
 *
 * This reader takes only the common, well-formed case: known fields with their own wire types, each message field
 * at most once, lengths inside their message, valid UTF-8, varints of ordinary size. For anything else it returns
 * undefined and the caller uses fromBinary, so unknown fields, merges of repeated message fields and every error
 * (message and code) stay fromBinary's. test/server/event-binary-reader.test.ts checks that whatever this reader
 * returns equals fromBinary's result, on generated messages and on mutations of them.
 */
export function eventMessageDecoder(desc: DescMessage): ((bytes: Uint8Array) => Message | undefined) | undefined {
  const fields: Record<number, FieldLayout> = {};
  const strings: string[] = [];
  const lists: string[] = [];
  for (const field of desc.fields) {
    const { localName, number } = field;
    if (field.oneof) return undefined;
    if (field.fieldKind === "message" && field.message.typeName === AuditEventSchema.typeName) {
      fields[number] = message(localName, EVENT, newEvent);
    } else if (
      field.fieldKind === "list" &&
      field.listKind === "message" &&
      field.message.typeName === AuditEventSchema.typeName
    ) {
      lists.push(localName);
      fields[number] = events(localName);
    } else if (
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.STRING &&
      field.presence === IMPLICIT_PRESENCE
    ) {
      strings.push(localName);
      fields[number] = string(localName);
    } else {
      return undefined;
    }
  }
  const top = layout(fields);
  return (bytes) => {
    const made: Record<string, unknown> = { $typeName: desc.typeName };
    for (const name of strings) made[name] = "";
    for (const name of lists) made[name] = [];
    const r = new Reader(bytes);
    try {
      return r.fields(r.end, made, top) as Message;
    } catch (error) {
      if (error === DEFER) return undefined;
      throw error;
    }
  };
}

/** Thrown by the reader for anything it leaves to fromBinary; made once, as it carries no detail. */
const DEFER = Symbol("left to fromBinary");

/** Strings up to this many bytes are checked for ASCII in a loop, which beats a call to isUtf8 on short ones. */
const SHORT_STRING = 64;

/** Deep enough for any attributes readEvent accepts; deeper ones are fromBinary's (and its recursion limit's). */
const MAX_DEPTH = 32;

class Reader {
  readonly buf: Buffer;
  pos = 0;
  readonly end: number;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.end = this.buf.length;
  }

  /** A varint of at most 7 bytes (below 2^49, exact as a number); longer ones are left to fromBinary. */
  varint(end: number): number {
    const buf = this.buf;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= end) throw DEFER;
      const b = buf[this.pos++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 0x80;
    }
    throw DEFER;
  }

  /** A field's tag: field numbers below 2048 (two bytes), which covers every field this reader knows. */
  tag(end: number): number {
    return this.varintUpTo(0x3fff, end);
  }

  /** A length prefix; returns where the value ends, which must be inside its message. */
  length(end: number): number {
    const length = this.varint(end);
    const stop = this.pos + length;
    if (stop > end) throw DEFER;
    return stop;
  }

  /** An int32 that is not negative (a negative one is ten bytes on the wire, and rare: fromBinary's). */
  int32(end: number): number {
    return this.varintUpTo(0x7fffffff, end);
  }

  private varintUpTo(max: number, end: number): number {
    const value = this.varint(end);
    if (value > max) throw DEFER;
    return value;
  }

  string(end: number): string {
    const stop = this.length(end);
    const { buf } = this;
    const start = this.pos;
    this.pos = stop;
    if (stop - start <= SHORT_STRING) {
      let i = start;
      while (i < stop && (buf[i] as number) < 0x80) i++;
      if (i === stop) return buf.toString("latin1", start, stop);
    }
    // fromBinary refuses invalid UTF-8 (proto3 strings are checked); that error is its to give.
    if (!isUtf8(buf.subarray(start, stop))) throw DEFER;
    return buf.toString("utf8", start, stop);
  }

  double(end: number): number {
    if (this.pos + 8 > end) throw DEFER;
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  /**
   * A message's fields into `message` (made with its defaults), by `layout`: a field the layout lacks, or with
   * another wire type, is fromBinary's. A scalar given twice keeps the last value, as in fromBinary; a message field
   * given twice is merged there, so it is left to it.
   */
  fields<M extends object>(end: number, message: M, layout: Layout): M {
    const m = message as Record<string, unknown>;
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = layout[tag >>> 3];
      if (field === undefined || (tag & 7) !== field.wireType) throw DEFER;
      const { name } = field;
      if (field.repeated) (m[name] as unknown[]).push(field.read(this, end));
      else if (field.once && m[name] !== undefined) throw DEFER;
      else m[name] = field.read(this, end);
    }
    return message;
  }

  /** google.protobuf.Struct as protobuf-es holds it: a JSON object, entries in the order read. */
  struct(end: number, depth: number): JsonObject {
    if (depth > MAX_DEPTH) throw DEFER;
    const object: JsonObject = {};
    while (this.pos < end) {
      if (this.tag(end) !== ((1 << 3) | LEN)) throw DEFER;
      const entryEnd = this.length(end);
      let key = "";
      let value: JsonValue = null;
      let valueSeen = false;
      while (this.pos < entryEnd) {
        const tag = this.tag(entryEnd);
        if (tag === ((1 << 3) | LEN)) key = this.string(entryEnd);
        else if (tag === ((2 << 3) | LEN) && !valueSeen) {
          value = this.value(this.length(entryEnd), depth);
          valueSeen = true;
        } else throw DEFER;
      }
      // An own property, as fromBinary makes it: a plain assignment of "__proto__" would set the prototype.
      if (key === "__proto__") {
        Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
      } else object[key] = value;
    }
    return object;
  }

  /** google.protobuf.Value: one kind, as JSON; a Value with no kind is null, as fromBinary makes it. */
  private value(end: number, depth: number): JsonValue {
    if (this.pos === end) return null;
    const tag = this.tag(end);
    let value: JsonValue;
    switch (tag) {
      case (1 << 3) | VARINT:
        this.varint(end);
        value = null;
        break;
      case (2 << 3) | BIT64:
        value = this.double(end);
        break;
      case (3 << 3) | LEN:
        value = this.string(end);
        break;
      case (4 << 3) | VARINT:
        value = this.varint(end) !== 0;
        break;
      case (5 << 3) | LEN:
        value = this.struct(this.length(end), depth + 1);
        break;
      case (6 << 3) | LEN:
        value = this.list(this.length(end), depth + 1);
        break;
      default:
        throw DEFER;
    }
    // A second kind replaces or merges into the first in fromBinary: left to it.
    if (this.pos !== end) throw DEFER;
    return value;
  }

  /** google.protobuf.ListValue: repeated Value values = 1. */
  private list(end: number, depth: number): JsonValue[] {
    if (depth > MAX_DEPTH) throw DEFER;
    const values: JsonValue[] = [];
    while (this.pos < end) {
      if (this.tag(end) !== ((1 << 3) | LEN)) throw DEFER;
      values.push(this.value(this.length(end), depth));
    }
    return values;
  }
}

/** How to read one field: the property it sets, its wire type, and its value from the reader. */
interface FieldLayout {
  name: string;
  wireType: number;
  read(r: Reader, end: number): unknown;
  /** Appended to a list. */
  repeated?: boolean;
  /** A message: a second occurrence is merged by fromBinary, so it is left to it. */
  once?: boolean;
}

/** A message's fields by field number. */
type Layout = (FieldLayout | undefined)[];

function layout(fields: Record<number, FieldLayout>): Layout {
  const out: Layout = [];
  for (const [number, field] of Object.entries(fields)) out[Number(number)] = field;
  return out;
}

const string = (name: string): FieldLayout => ({ name, wireType: LEN, read: (r, end) => r.string(end) });
const strings = (name: string): FieldLayout => ({ ...string(name), repeated: true });
const int32 = (name: string): FieldLayout => ({ name, wireType: VARINT, read: (r, end) => r.int32(end) });
const int64 = (name: string): FieldLayout => ({ name, wireType: VARINT, read: (r, end) => BigInt(r.varint(end)) });
const double = (name: string): FieldLayout => ({ name, wireType: BIT64, read: (r, end) => r.double(end) });
const message = <M extends object>(name: string, fields: Layout, make: () => M): FieldLayout => ({
  name,
  wireType: LEN,
  once: true,
  read: (r, end) => r.fields(r.length(end), make(), fields),
});
const events = (name: string): FieldLayout => ({ ...message(name, EVENT, newEvent), once: false, repeated: true });

const TIMESTAMP = layout({ 1: int64("seconds"), 2: int32("nanos") });
const newTimestamp = (): Timestamp => ({ $typeName: "google.protobuf.Timestamp", seconds: 0n, nanos: 0 });
const timestamp = (name: string) => message(name, TIMESTAMP, newTimestamp);

const EVENT = layout({
  1: string("id"),
  2: string("tenant"),
  3: int64("sequence"),
  4: timestamp("occurredAt"),
  5: timestamp("receivedAt"),
  6: timestamp("completedAt"),
  7: string("source"),
  8: string("action"),
  9: string("category"),
  10: message(
    "actor",
    layout({ 1: string("id"), 2: string("type"), 3: string("name"), 4: string("email"), 5: strings("roles") }),
    (): Actor => ({ $typeName: "audit.v1.Actor", id: "", type: "", name: "", email: "", roles: [] }),
  ),
  11: message(
    "target",
    layout({ 1: string("id"), 2: string("type"), 3: string("name") }),
    (): Target => ({ $typeName: "audit.v1.Target", id: "", type: "", name: "" }),
  ),
  12: message(
    "outcome",
    layout({ 1: int32("status"), 2: string("code"), 3: string("message") }),
    (): Outcome => ({ $typeName: "audit.v1.Outcome", status: 0, code: "", message: "" }),
  ),
  13: message(
    "request",
    layout({
      1: string("ip"),
      2: string("method"),
      3: string("url"),
      4: string("userAgent"),
      5: double("durationMs"),
      6: string("correlationId"),
      7: string("sessionId"),
    }),
    (): RequestInfo => ({
      $typeName: "audit.v1.RequestInfo",
      ip: "",
      method: "",
      url: "",
      userAgent: "",
      durationMs: 0,
      correlationId: "",
      sessionId: "",
    }),
  ),
  14: { name: "attributes", wireType: LEN, once: true, read: (r, end) => r.struct(r.length(end), 1) },
  15: string("parentId"),
  16: timestamp("expiresAt"),
});

function newEvent(): AuditEvent {
  return {
    $typeName: "audit.v1.AuditEvent",
    id: "",
    tenant: "",
    sequence: 0n,
    source: "",
    action: "",
    category: "",
    parentId: "",
  };
}
