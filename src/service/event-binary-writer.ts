import {
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
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
 * The protobuf binary form of messages made of AuditEvents (CreateResponse, ListResponse, ...), written by hand into
 * one buffer. protobuf-es's toBinary is exact but general: it turns each Struct of attributes into Value messages,
 * forks a chunk list per nested message and encodes every string through a TextEncoder, which made encoding the
 * largest cost of a List page. The output is byte for byte what toBinary writes (test/server/event-binary-writer.test.ts
 * checks it on generated events); anything this writer does not know (unknown fields, other field types) is left to
 * toBinary.
 */
export function eventMessageEncoder(desc: DescMessage): ((message: Message) => Uint8Array) | undefined {
  const fields: ((w: Writer, message: Record<string, unknown>) => void)[] = [];
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    const { localName, number } = field;
    if (field.oneof) return undefined;
    if (field.fieldKind === "message" && field.message.typeName === AuditEventSchema.typeName) {
      fields.push((w, m) => {
        const event = m[localName] as AuditEvent | undefined;
        if (event !== undefined) w.event(number, event);
      });
    } else if (
      field.fieldKind === "list" &&
      field.listKind === "message" &&
      field.message.typeName === AuditEventSchema.typeName
    ) {
      fields.push((w, m) => {
        for (const event of m[localName] as AuditEvent[]) w.event(number, event);
      });
    } else if (
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.STRING &&
      field.presence === IMPLICIT_PRESENCE
    ) {
      fields.push((w, m) => w.string(number, m[localName] as string));
    } else {
      return undefined;
    }
  }
  return (message) => {
    if (message.$unknown?.length) return toBinary(desc, message);
    const w = new Writer();
    for (const field of fields) field(w, message as unknown as Record<string, unknown>);
    return w.finish();
  };
}

class Writer {
  private buf = Buffer.allocUnsafe(4096);
  private pos = 0;

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private reserve(bytes: number) {
    if (this.pos + bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private varint(value: number) {
    this.reserve(10);
    while (value > 0x7f) {
      this.buf[this.pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buf[this.pos++] = value;
  }

  private tag(field: number, wireType: number) {
    this.varint(field * 8 + wireType);
  }

  /** A signed 64-bit varint: negatives take ten bytes in two's complement, as protobuf's int32 and int64 do. */
  private signed(value: bigint | number) {
    if (typeof value === "number" && value >= 0 && value <= Number.MAX_SAFE_INTEGER) return this.varint(value);
    let v = BigInt.asUintN(64, BigInt(value));
    this.reserve(10);
    while (v > 0x7fn) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  /**
   * Opens a length-delimited field: one byte is reserved for its length, which `end` fills in (moving the body up
   * when the length needs more bytes). Returns where the body starts.
   */
  private begin(field: number): number {
    this.tag(field, LEN);
    this.reserve(1);
    return ++this.pos;
  }

  private end(start: number) {
    const length = this.pos - start;
    if (length < 0x80) {
      this.buf[start - 1] = length;
      return;
    }
    let extra = 1;
    for (let n = length >>> 14; n > 0; n >>>= 7) extra++;
    this.reserve(extra);
    this.buf.copyWithin(start + extra, start, this.pos);
    this.pos = start - 1;
    this.varint(length);
    this.pos += length;
  }

  string(field: number, value: string) {
    if (value === "") return;
    this.stringAlways(field, value);
  }

  private stringAlways(field: number, value: string) {
    this.tag(field, LEN);
    const n = value.length;
    if (n < 0x80) {
      // Short ASCII strings, nearly all of an event's, are copied here: a call into Buffer.write costs more.
      this.reserve(1 + n * 3);
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      const length = i === n ? n : buf.write(value, start);
      if (length < 0x80) {
        buf[this.pos] = length;
        this.pos = start + length;
        return;
      }
    }
    const length = Buffer.byteLength(value);
    this.varint(length);
    this.reserve(length);
    this.pos += this.buf.write(value, this.pos, length);
  }

  private double(field: number, value: number) {
    this.tag(field, BIT64);
    this.reserve(8);
    this.pos = this.buf.writeDoubleLE(value, this.pos);
  }

  /**
   * A message field of AuditEvent: nothing when unset, toBinary's bytes when it has unknown fields, else its fields
   * written by `body` (a method, so no closure is made per call).
   */
  private nested<M extends Message>(field: number, message: M | undefined, body: (this: Writer, message: M) => void) {
    if (message === undefined) return;
    if (message.$unknown?.length) return this.foreign(field, message);
    const start = this.begin(field);
    body.call(this, message);
    this.end(start);
  }

  private timestamp(ts: Timestamp) {
    if (ts.seconds !== 0n) {
      this.tag(1, VARINT);
      this.signed(ts.seconds >= 0n && ts.seconds <= 0x1fffffffffffffn ? Number(ts.seconds) : ts.seconds);
    }
    if (ts.nanos !== 0) {
      this.tag(2, VARINT);
      this.signed(ts.nanos);
    }
  }

  private actor(actor: Actor) {
    this.string(1, actor.id);
    this.string(2, actor.type);
    this.string(3, actor.name);
    this.string(4, actor.email);
    for (const role of actor.roles) this.stringAlways(5, role);
  }

  private target(target: Target) {
    this.string(1, target.id);
    this.string(2, target.type);
    this.string(3, target.name);
  }

  private outcome(outcome: Outcome) {
    if (outcome.status !== 0) {
      this.tag(1, VARINT);
      this.signed(outcome.status);
    }
    this.string(2, outcome.code);
    this.string(3, outcome.message);
  }

  private request(request: RequestInfo) {
    this.string(1, request.ip);
    this.string(2, request.method);
    this.string(3, request.url);
    this.string(4, request.userAgent);
    if (!Object.is(request.durationMs, 0)) this.double(5, request.durationMs);
    this.string(6, request.correlationId);
    this.string(7, request.sessionId);
  }

  /** A field of AuditEvent holding a message this writer does not take apart (it has unknown fields): toBinary's. */
  private foreign(field: number, message: Message) {
    const desc = AuditEventSchema.fields.find((f) => f.number === field)?.message as DescMessage;
    this.bytes(field, toBinary(desc, message));
  }

  private bytes(field: number, bytes: Uint8Array) {
    this.tag(field, LEN);
    this.varint(bytes.byteLength);
    this.reserve(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }

  event(field: number, e: AuditEvent) {
    if (e.$unknown?.length) return this.bytes(field, toBinary(AuditEventSchema, e));
    const start = this.begin(field);
    this.string(1, e.id);
    this.string(2, e.tenant);
    if (e.sequence !== 0n) {
      this.tag(3, VARINT);
      this.signed(e.sequence >= 0n && e.sequence <= 0x1fffffffffffffn ? Number(e.sequence) : e.sequence);
    }
    this.nested(4, e.occurredAt, this.timestamp);
    this.nested(5, e.receivedAt, this.timestamp);
    this.nested(6, e.completedAt, this.timestamp);
    this.string(7, e.source);
    this.string(8, e.action);
    this.string(9, e.category);
    this.nested(10, e.actor, this.actor);
    this.nested(11, e.target, this.target);
    this.nested(12, e.outcome, this.outcome);
    this.nested(13, e.request, this.request);
    if (e.attributes !== undefined) {
      const at = this.begin(14);
      this.struct(e.attributes);
      this.end(at);
    }
    this.string(15, e.parentId);
    this.nested(16, e.expiresAt, this.timestamp);
    this.end(start);
  }

  /** google.protobuf.Struct from its JSON form: map<string, Value> fields = 1, entries in key order. */
  private struct(object: JsonObject) {
    for (const key of Object.keys(object)) {
      const entry = this.begin(1);
      this.stringAlways(1, key);
      const value = this.begin(2);
      this.value(object[key] as JsonValue);
      this.end(value);
      this.end(entry);
    }
  }

  /** google.protobuf.Value: a oneof, so even a zero value is written. */
  private value(v: JsonValue) {
    if (v === null) {
      this.tag(1, VARINT);
      this.varint(0);
    } else if (typeof v === "number") {
      this.double(2, v);
    } else if (typeof v === "string") {
      this.stringAlways(3, v);
    } else if (typeof v === "boolean") {
      this.tag(4, VARINT);
      this.varint(v ? 1 : 0);
    } else if (Array.isArray(v)) {
      const list = this.begin(6);
      for (const item of v) {
        const at = this.begin(1);
        this.value(item);
        this.end(at);
      }
      this.end(list);
    } else {
      const at = this.begin(5);
      this.struct(v);
      this.end(at);
    }
  }
}
