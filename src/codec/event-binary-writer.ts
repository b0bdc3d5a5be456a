import {
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { readStructBytes } from "./event-binary-reader.js";
import { EVENT, type FieldSpec, holdsEvents, type Kind, type MessageSpec } from "./event-fields.js";
import {
  BOOL_VALUE,
  ENTRY_KEY,
  ENTRY_VALUE,
  LIST_VALUE,
  LIST_VALUES,
  NULL_VALUE,
  NUMBER_VALUE,
  STRING_VALUE,
  STRUCT_FIELDS,
  STRUCT_VALUE,
} from "./struct-fields.js";

/**
 * The protobuf binary form of messages made of AuditEvents (CreateResponse, ListResponse, ...), written by hand into
 * one buffer. protobuf-es's toBinary is exact but general: it turns each Struct of attributes into Value messages,
 * forks a chunk list per nested message and encodes every string through a TextEncoder, which made encoding the
 * largest cost of a List page. The fields written are AuditEvent's descriptors' (event-fields.ts), in field-number
 * order; the output is byte for byte what toBinary writes (test/codec/event-binary-writer.test.ts checks it on events
 * generated from the same descriptors). A message with unknown fields is left to toBinary.
 *
 * The bytes returned are the encoder's own until its next call (every message is written into one shared buffer):
 * copy them, as the gRPC envelope does, before encoding another message.
 */
export function eventMessageEncoder(desc: DescMessage): ((message: Message) => Uint8Array) | undefined {
  if (Array.isArray(EVENT)) return undefined;
  const event = EVENT;
  const fields: ((w: Writer, message: Record<string, unknown>) => void)[] = [];
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    const { localName } = field;
    const tag = (field.number << 3) | LEN;
    if (field.oneof) return undefined;
    if (holdsEvents(field) && field.fieldKind === "message") {
      fields.push((w, m) => {
        const value = m[localName] as Message | undefined;
        if (value !== undefined) w.message(tag, event, value);
      });
    } else if (holdsEvents(field)) {
      fields.push((w, m) => {
        for (const value of m[localName] as Message[]) w.message(tag, event, value);
      });
    } else if (
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.STRING &&
      field.presence === FeatureSet_FieldPresence.IMPLICIT
    ) {
      fields.push((w, m) => w.string(tag, m[localName] as string));
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

const LEN = WireType.LengthDelimited;
/** Integers up to here are exact as numbers, and written without a bigint. */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Where every message is written (encoding is synchronous): one buffer, grown as needed and let go of again once it
 * grew past SCRATCH_KEPT. Writing a page of events so takes no new memory; fresh buffers, doubling as they fill,
 * cost the page faults of new memory and the copies between them on every call (docs/performance.md, "Reads").
 */
let scratch = Buffer.allocUnsafe(64 * 1024);
const SCRATCH_KEPT = 4 * 1024 * 1024;

class Writer {
  private buf = scratch;
  private pos = 0;

  /** The bytes written, in the shared buffer: valid until the next message is encoded. */
  finish(): Uint8Array {
    if (this.buf.length <= SCRATCH_KEPT) scratch = this.buf;
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
  private begin(tag: number): number {
    this.varint(tag);
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

  string(tag: number, value: string) {
    if (value === "") return;
    this.stringAlways(tag, value);
  }

  private stringAlways(tag: number, value: string) {
    this.varint(tag);
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

  private double(tag: number, value: number) {
    this.varint(tag);
    this.reserve(8);
    this.pos = this.buf.writeDoubleLE(value, this.pos);
  }

  /** A message field: toBinary's bytes when it has unknown fields, else its fields as `spec` lists them. */
  message(tag: number, spec: MessageSpec, message: Message) {
    if (message.$unknown?.length) return this.bytes(tag, toBinary(spec.desc, message));
    const start = this.begin(tag);
    this.fields(spec, message as unknown as Record<string, unknown>);
    this.end(start);
  }

  /** Each field that toBinary writes (a set message, a non-zero scalar, every list element), in field-number order. */
  private fields(spec: MessageSpec, m: Record<string, unknown>) {
    const fields = spec.fields;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as FieldSpec;
      const value = m[f.name];
      // Literal labels (each pinned to its Kind by `satisfies`) let V8 jump to the case through a table.
      switch (f.kind) {
        case 0 satisfies typeof Kind.String:
          if (value !== "") this.stringAlways(f.tag, value as string);
          break;
        case 1 satisfies typeof Kind.Strings:
          for (const item of value as string[]) this.stringAlways(f.tag, item);
          break;
        case 2 satisfies typeof Kind.Bool:
          if (value === true) {
            this.varint(f.tag);
            this.varint(1);
          }
          break;
        case 3 satisfies typeof Kind.Int32:
        case 4 satisfies typeof Kind.Enum:
          if (value !== 0) {
            this.varint(f.tag);
            this.signed(value as number);
          }
          break;
        case 5 satisfies typeof Kind.Int64:
          if (value !== 0n) {
            const n = value as bigint;
            this.varint(f.tag);
            this.signed(n >= 0n && n <= MAX_SAFE ? Number(n) : n);
          }
          break;
        case 6 satisfies typeof Kind.Double:
          // toBinary writes -0, which is not proto3's zero value.
          if (!Object.is(value, 0)) this.double(f.tag, value as number);
          break;
        case 7 satisfies typeof Kind.Message:
          if (value !== undefined) this.message(f.tag, f.message as MessageSpec, value as Message);
          break;
        case 8 satisfies typeof Kind.Messages:
          for (const item of value as Message[]) this.message(f.tag, f.message as MessageSpec, item);
          break;
        case 9 satisfies typeof Kind.Struct:
          if (value !== undefined) {
            // A value read from a request (an event being answered) is written as the bytes it was read from, when
            // those are exactly what struct() would write.
            const read = readStructBytes(value as JsonObject);
            if (read !== undefined) this.bytes(f.tag, read);
            else {
              const at = this.begin(f.tag);
              this.struct(value as JsonObject);
              this.end(at);
            }
          }
          break;
      }
    }
  }

  private bytes(tag: number, bytes: Uint8Array) {
    this.varint(tag);
    this.varint(bytes.byteLength);
    this.reserve(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }

  /** google.protobuf.Struct from its JSON form: map<string, Value> fields = 1, entries in key order. */
  private struct(object: JsonObject) {
    for (const key of Object.keys(object)) {
      const entry = this.begin(STRUCT_FIELDS);
      this.stringAlways(ENTRY_KEY, key);
      const value = this.begin(ENTRY_VALUE);
      this.value(object[key] as JsonValue);
      this.end(value);
      this.end(entry);
    }
  }

  /** google.protobuf.Value: a oneof, so even a zero value is written. */
  private value(v: JsonValue) {
    if (v === null) {
      this.varint(NULL_VALUE);
      this.varint(0);
    } else if (typeof v === "number") {
      this.double(NUMBER_VALUE, v);
    } else if (typeof v === "string") {
      this.stringAlways(STRING_VALUE, v);
    } else if (typeof v === "boolean") {
      this.varint(BOOL_VALUE);
      this.varint(v ? 1 : 0);
    } else if (Array.isArray(v)) {
      const list = this.begin(LIST_VALUE);
      for (const item of v) {
        const at = this.begin(LIST_VALUES);
        this.value(item);
        this.end(at);
      }
      this.end(list);
    } else {
      const at = this.begin(STRUCT_VALUE);
      this.struct(v);
      this.end(at);
    }
  }
}
