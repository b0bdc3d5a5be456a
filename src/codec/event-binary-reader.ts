import { isUtf8 } from "node:buffer";
import {
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type Message,
  ScalarType,
} from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { EVENT, type FieldSpec, holdsEvents, Kind, type MessageSpec } from "./event-fields.js";
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
 * Reads requests made of AuditEvents (CreateRequest, BatchCreateRequest) from the protobuf binary form by hand, into
 * the plain objects fromBinary makes. fromBinary is exact but general, and was the largest single cost of a
 * BatchCreate after the events' own checks: a reflective reader per field, a Struct message per attributes value
 * turned into JSON afterwards. The field tables come from the descriptors (event-fields.ts), built once.
 *
 * This reader takes only the common, well-formed case: known fields with their own wire types, each message field
 * at most once, lengths inside their message, valid UTF-8, varints of ordinary size. For anything else it returns
 * undefined and the caller uses fromBinary, so unknown fields, merges of repeated message fields and every error
 * (message and code) stay fromBinary's. test/codec/event-binary-reader.test.ts checks that whatever this reader
 * returns equals fromBinary's result, on generated messages and on mutations of them.
 */
export function eventMessageDecoder(desc: DescMessage): ((bytes: Uint8Array) => Message | undefined) | undefined {
  if (Array.isArray(EVENT)) return undefined;
  const fields: FieldLayout[] = [];
  for (const field of desc.fields) {
    if (field.oneof) return undefined;
    if (holdsEvents(field)) fields.push(eventsLayout(field));
    else if (
      field.fieldKind === "scalar" &&
      field.scalar === ScalarType.STRING &&
      field.presence === FeatureSet_FieldPresence.IMPLICIT
    ) {
      fields.push(stringLayout(field.localName, field.number));
    } else {
      return undefined;
    }
  }
  const top = new MessageLayout(desc.typeName, fields);
  return (bytes) => {
    const r = new Reader(bytes);
    try {
      return r.fields(r.end, top.make(), top) as Message;
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

/** A base class whose constructor returns the object it is given: a subclass then adds its fields to that object. */
class Given {
  constructor(object: object) {
    // biome-ignore lint/correctness/noConstructorReturn: the point, see KeptBytes.
    return object;
  }
}

/**
 * The encoded form of a Struct value (an event's attributes) as it was read, kept on the value itself in a private
 * field, only when it is byte for byte what the writer (event-binary-writer.ts) writes for the value: the writer copies
 * it instead of writing the value again, as it does for every event of a BatchCreate's and a Create's answer. A
 * private field is invisible to everything else (keys, JSON, spreads, equality, structuredClone) and goes with its
 * value, as a WeakMap entry would, without the WeakMap's cost per entry (about 1 µs an event, collection included).
 * As structJson's texts, it holds only while a decoded value is not changed, which nothing does.
 */
class KeptBytes extends Given {
  readonly #bytes: Buffer;

  constructor(value: JsonObject, bytes: Buffer) {
    super(value);
    this.#bytes = bytes;
  }

  static of(value: JsonObject): Buffer | undefined {
    return #bytes in value ? (value as unknown as KeptBytes).#bytes : undefined;
  }
}

/** The bytes a Struct value was read from, when the writer would write exactly these; else undefined. */
export function readStructBytes(value: JsonObject): Buffer | undefined {
  return KeptBytes.of(value);
}

class Reader {
  readonly buf: Buffer;
  pos = 0;
  readonly end: number;
  /**
   * Cleared when a Struct's bytes, read since it was set, are not exactly what the writer writes for the value read
   * (a varint longer than it needs, a repeated or missing entry part, keys a JavaScript object reorders, ...).
   */
  exact = true;

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
      if (b < 0x80) {
        // A last byte of 0 after others: a longer encoding than the writer's.
        if (b === 0 && i > 0) this.exact = false;
        return value;
      }
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
  fields<M extends object>(end: number, message: M, layout: MessageLayout): M {
    const m = message as Record<string, unknown>;
    const byNumber = layout.byNumber;
    while (this.pos < end) {
      const tag = this.tag(end);
      const field = byNumber[tag >>> 3];
      if (field === undefined || (tag & 7) !== field.wireType) throw DEFER;
      const { name } = field;
      if (field.repeated) (m[name] as unknown[]).push(field.read(this, end));
      else if (field.once && m[name] !== undefined) throw DEFER;
      else m[name] = field.read(this, end);
    }
    return message;
  }

  /** A Struct field (an event's attributes): struct(), its bytes kept for the writer when they are exactly what it writes. */
  structField(end: number): JsonObject {
    const start = this.pos;
    this.exact = true;
    const object = this.struct(end, 1);
    if (this.exact) {
      const bytes = Buffer.allocUnsafe(end - start);
      this.buf.copy(bytes, 0, start, end);
      new KeptBytes(object, bytes);
    }
    return object;
  }

  /** google.protobuf.Struct as protobuf-es holds it: a JSON object, entries in the order read. */
  struct(end: number, depth: number): JsonObject {
    if (depth > MAX_DEPTH) throw DEFER;
    const object: JsonObject = {};
    while (this.pos < end) {
      if (this.tag(end) !== STRUCT_FIELDS) throw DEFER;
      const entryEnd = this.length(end);
      let key = "";
      let value: JsonValue = null;
      let valueSeen = false;
      // The writer writes each entry as its key, then its value.
      let parts = 0;
      while (this.pos < entryEnd) {
        const tag = this.tag(entryEnd);
        if (tag === ENTRY_KEY) {
          if (parts++ !== 0) this.exact = false;
          key = this.string(entryEnd);
        } else if (tag === ENTRY_VALUE && !valueSeen) {
          if (parts++ !== 1) this.exact = false;
          value = this.value(this.length(entryEnd), depth);
          valueSeen = true;
        } else throw DEFER;
      }
      // A key met again replaces its value (one entry written where two were read); an inherited name such as
      // __proto__ is left out to be safe. Keys starting with a digit may be array indices, which an object lists first.
      const first = key.charCodeAt(0);
      if (parts !== 2 || (first >= 48 && first <= 57) || object[key] !== undefined) this.exact = false;
      // An own property, as fromBinary makes it: a plain assignment of "__proto__" would set the prototype.
      if (key === "__proto__") {
        Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
      } else object[key] = value;
    }
    return object;
  }

  /** google.protobuf.Value: one kind, as JSON; a Value with no kind is null, as fromBinary makes it. */
  private value(end: number, depth: number): JsonValue {
    if (this.pos === end) {
      // The writer writes null as a null_value.
      this.exact = false;
      return null;
    }
    const tag = this.tag(end);
    let value: JsonValue;
    switch (tag) {
      case NULL_VALUE:
        if (this.varint(end) !== 0) this.exact = false;
        value = null;
        break;
      case NUMBER_VALUE:
        value = this.double(end);
        // A NaN's bits need not survive being read and written.
        if (Number.isNaN(value)) this.exact = false;
        break;
      case STRING_VALUE:
        value = this.string(end);
        break;
      case BOOL_VALUE: {
        const flag = this.varint(end);
        if (flag > 1) this.exact = false;
        value = flag !== 0;
        break;
      }
      case STRUCT_VALUE:
        value = this.struct(this.length(end), depth + 1);
        break;
      case LIST_VALUE:
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
      if (this.tag(end) !== LIST_VALUES) throw DEFER;
      values.push(this.value(this.length(end), depth));
    }
    return values;
  }
}

/**
 * How to read one field: the property it sets, its wire type, and its value from the reader. A class, so every
 * field's layout has one hidden class and the reader's loop stays monomorphic.
 */
class FieldLayout {
  constructor(
    readonly name: string,
    readonly number: number,
    readonly wireType: number,
    readonly read: (r: Reader, end: number) => unknown,
    /** A scalar's value when absent, which a message is made with; message fields are left unset. */
    readonly zero: unknown,
    /** Appended to a list. */
    readonly repeated = false,
    /** A message: a second occurrence is merged by fromBinary, so it is left to it. */
    readonly once = false,
  ) {}
}

/** A message's fields by field number, and how to make it with its defaults, as fromBinary starts it. */
class MessageLayout {
  readonly byNumber: (FieldLayout | undefined)[] = [];
  /** The message with its defaults: its own lists, its scalars' zero values, its message fields unset. */
  readonly make: () => Record<string, unknown>;

  constructor(typeName: string, fields: FieldLayout[]) {
    const members = [`$typeName: ${JSON.stringify(typeName)}`];
    for (const field of fields) {
      this.byNumber[field.number] = field;
      if (field.repeated) members.push(`${JSON.stringify(field.name)}: []`);
      else if (field.zero !== undefined) members.push(`${JSON.stringify(field.name)}: ${sourceOf(field.zero)}`);
    }
    // One object literal per message type, compiled once from the descriptor: V8 allocates each message in one
    // step with its final shape, where a copy of a defaults object at one shared site costs as much as reading the
    // fields. Names and values are quoted (JSON) or fixed literals, never request data.
    this.make = new Function(`return () => ({ ${members.join(", ")} });`)() as () => Record<string, unknown>;
  }
}

/** A zero value as JavaScript source. */
function sourceOf(zero: unknown): string {
  return typeof zero === "bigint" ? `${zero}n` : JSON.stringify(zero);
}

const { Varint: VARINT, Bit64: BIT64, LengthDelimited: LEN } = WireType;

/** Built once per message type, when the first decoder is made. */
const layouts = new Map<MessageSpec, MessageLayout>();

function layoutOf(spec: MessageSpec): MessageLayout {
  let layout = layouts.get(spec);
  if (!layout) {
    layout = new MessageLayout(spec.typeName, spec.fields.map(fieldLayout));
    layouts.set(spec, layout);
  }
  return layout;
}

const string = (r: Reader, end: number) => r.string(end);
const bool = (r: Reader, end: number) => r.varint(end) !== 0;
const int32 = (r: Reader, end: number) => r.int32(end);
const int64 = (r: Reader, end: number) => BigInt(r.varint(end));
const double = (r: Reader, end: number) => r.double(end);
const struct = (r: Reader, end: number) => r.structField(r.length(end));

function stringLayout(name: string, number: number): FieldLayout {
  return new FieldLayout(name, number, LEN, string, "");
}

/** A message field, or a list of them (`repeated`), of the type `layout` reads. */
function messageLayout(name: string, number: number, layout: MessageLayout, repeated: boolean): FieldLayout {
  const read = (r: Reader, end: number) => r.fields(r.length(end), layout.make(), layout);
  return new FieldLayout(name, number, LEN, read, undefined, repeated, !repeated);
}

/** A field of a request holding one AuditEvent or a list of them. */
function eventsLayout(field: DescField): FieldLayout {
  return messageLayout(field.localName, field.number, layoutOf(EVENT as MessageSpec), field.fieldKind === "list");
}

function fieldLayout(f: FieldSpec): FieldLayout {
  const { name, number } = f;
  switch (f.kind) {
    case Kind.String:
      return stringLayout(name, number);
    case Kind.Strings:
      return new FieldLayout(name, number, LEN, string, undefined, true);
    case Kind.Bool:
      return new FieldLayout(name, number, VARINT, bool, false);
    case Kind.Int32:
    case Kind.Enum:
      return new FieldLayout(name, number, VARINT, int32, 0);
    case Kind.Int64:
      return new FieldLayout(name, number, VARINT, int64, 0n);
    case Kind.Double:
      return new FieldLayout(name, number, BIT64, double, 0);
    case Kind.Message:
    case Kind.Messages:
      return messageLayout(name, number, layoutOf(f.message as MessageSpec), f.kind === Kind.Messages);
    case Kind.Struct:
      return new FieldLayout(name, number, LEN, struct, undefined, false, true);
  }
}
