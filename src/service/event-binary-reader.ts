import { isUtf8 } from "node:buffer";
import { type DescMessage, type JsonObject, type JsonValue, type Message, ScalarType } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
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
  // Every field this reader knows at the top (strings, events) is length-delimited.
  const readers = new Map<number, (r: Reader, message: Record<string, unknown>) => void>();
  const strings: string[] = [];
  const lists: string[] = [];
  for (const field of desc.fields) {
    const { localName } = field;
    if (field.oneof) return undefined;
    if (field.fieldKind === "message" && field.message.typeName === AuditEventSchema.typeName) {
      readers.set(field.number, (r, m) => {
        if (m[localName] !== undefined) throw DEFER;
        m[localName] = r.event(r.length(r.end));
      });
    } else if (
      field.fieldKind === "list" &&
      field.listKind === "message" &&
      field.message.typeName === AuditEventSchema.typeName
    ) {
      lists.push(localName);
      readers.set(field.number, (r, m) => {
        (m[localName] as AuditEvent[]).push(r.event(r.length(r.end)));
      });
    } else if (
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.STRING &&
      field.presence === IMPLICIT_PRESENCE
    ) {
      strings.push(localName);
      readers.set(field.number, (r, m) => {
        m[localName] = r.string(r.end);
      });
    } else {
      return undefined;
    }
  }
  return (bytes) => {
    const message: Record<string, unknown> = { $typeName: desc.typeName };
    for (const name of strings) message[name] = "";
    for (const name of lists) message[name] = [];
    const r = new Reader(bytes);
    try {
      while (r.pos < r.end) {
        const tag = r.tag(r.end);
        const read = readers.get(tag >>> 3);
        if (read === undefined || (tag & 7) !== LEN) throw DEFER;
        read(r, message);
      }
      return message as Message;
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

  event(end: number): AuditEvent {
    const e: AuditEvent = {
      $typeName: "audit.v1.AuditEvent",
      id: "",
      tenant: "",
      sequence: 0n,
      source: "",
      action: "",
      category: "",
      parentId: "",
    };
    while (this.pos < end) {
      const tag = this.tag(end);
      const wireType = tag & 7;
      const number = tag >>> 3;
      if (wireType !== (number === 3 ? VARINT : LEN)) throw DEFER;
      switch (number) {
        case 1:
          e.id = this.string(end);
          break;
        case 2:
          e.tenant = this.string(end);
          break;
        case 3:
          e.sequence = BigInt(this.varint(end));
          break;
        case 4:
          if (e.occurredAt) throw DEFER;
          e.occurredAt = this.timestamp(this.length(end));
          break;
        case 5:
          if (e.receivedAt) throw DEFER;
          e.receivedAt = this.timestamp(this.length(end));
          break;
        case 6:
          if (e.completedAt) throw DEFER;
          e.completedAt = this.timestamp(this.length(end));
          break;
        case 7:
          e.source = this.string(end);
          break;
        case 8:
          e.action = this.string(end);
          break;
        case 9:
          e.category = this.string(end);
          break;
        case 10:
          if (e.actor) throw DEFER;
          e.actor = this.actor(this.length(end));
          break;
        case 11:
          if (e.target) throw DEFER;
          e.target = this.target(this.length(end));
          break;
        case 12:
          if (e.outcome) throw DEFER;
          e.outcome = this.outcome(this.length(end));
          break;
        case 13:
          if (e.request) throw DEFER;
          e.request = this.request(this.length(end));
          break;
        case 14:
          if (e.attributes) throw DEFER;
          e.attributes = this.struct(this.length(end), 1);
          break;
        case 15:
          e.parentId = this.string(end);
          break;
        case 16:
          if (e.expiresAt) throw DEFER;
          e.expiresAt = this.timestamp(this.length(end));
          break;
        default:
          throw DEFER;
      }
    }
    return e;
  }

  private timestamp(end: number): Timestamp {
    const ts: Timestamp = { $typeName: "google.protobuf.Timestamp", seconds: 0n, nanos: 0 };
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag === ((1 << 3) | VARINT)) ts.seconds = BigInt(this.varint(end));
      else if (tag === ((2 << 3) | VARINT)) ts.nanos = this.int32(end);
      else throw DEFER;
    }
    return ts;
  }

  private actor(end: number): NonNullable<AuditEvent["actor"]> {
    const a: NonNullable<AuditEvent["actor"]> = {
      $typeName: "audit.v1.Actor",
      id: "",
      type: "",
      name: "",
      email: "",
      roles: [],
    };
    while (this.pos < end) {
      const tag = this.tag(end);
      if ((tag & 7) !== LEN) throw DEFER;
      switch (tag >>> 3) {
        case 1:
          a.id = this.string(end);
          break;
        case 2:
          a.type = this.string(end);
          break;
        case 3:
          a.name = this.string(end);
          break;
        case 4:
          a.email = this.string(end);
          break;
        case 5:
          a.roles.push(this.string(end));
          break;
        default:
          throw DEFER;
      }
    }
    return a;
  }

  private target(end: number): NonNullable<AuditEvent["target"]> {
    const t: NonNullable<AuditEvent["target"]> = { $typeName: "audit.v1.Target", id: "", type: "", name: "" };
    while (this.pos < end) {
      const tag = this.tag(end);
      if ((tag & 7) !== LEN) throw DEFER;
      switch (tag >>> 3) {
        case 1:
          t.id = this.string(end);
          break;
        case 2:
          t.type = this.string(end);
          break;
        case 3:
          t.name = this.string(end);
          break;
        default:
          throw DEFER;
      }
    }
    return t;
  }

  private outcome(end: number): NonNullable<AuditEvent["outcome"]> {
    const o: NonNullable<AuditEvent["outcome"]> = { $typeName: "audit.v1.Outcome", status: 0, code: "", message: "" };
    while (this.pos < end) {
      const tag = this.tag(end);
      if (tag === ((1 << 3) | VARINT)) o.status = this.int32(end);
      else if (tag === ((2 << 3) | LEN)) o.code = this.string(end);
      else if (tag === ((3 << 3) | LEN)) o.message = this.string(end);
      else throw DEFER;
    }
    return o;
  }

  private request(end: number): NonNullable<AuditEvent["request"]> {
    const r: NonNullable<AuditEvent["request"]> = {
      $typeName: "audit.v1.RequestInfo",
      ip: "",
      method: "",
      url: "",
      userAgent: "",
      durationMs: 0,
      correlationId: "",
      sessionId: "",
    };
    while (this.pos < end) {
      const tag = this.tag(end);
      const number = tag >>> 3;
      if ((tag & 7) !== (number === 5 ? BIT64 : LEN)) throw DEFER;
      switch (number) {
        case 1:
          r.ip = this.string(end);
          break;
        case 2:
          r.method = this.string(end);
          break;
        case 3:
          r.url = this.string(end);
          break;
        case 4:
          r.userAgent = this.string(end);
          break;
        case 5:
          r.durationMs = this.double(end);
          break;
        case 6:
          r.correlationId = this.string(end);
          break;
        case 7:
          r.sessionId = this.string(end);
          break;
        default:
          throw DEFER;
      }
    }
    return r;
  }

  /** google.protobuf.Struct as protobuf-es holds it: a JSON object, entries in the order read. */
  private struct(end: number, depth: number): JsonObject {
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
