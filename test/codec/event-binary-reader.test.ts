import {
  create,
  type DescMessage,
  fromBinary,
  type JsonObject,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { expect, test } from "vitest";
import {
  AuditService,
  BatchCreateRequestSchema,
  BatchCreateResponseSchema,
  CreateRequestSchema,
  ListRequestSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { eventMessageDecoder, readStructBytes } from "../../src/codec/event-binary-reader.js";
import { eventMessageEncoder } from "../../src/codec/event-binary-writer.js";
import { auditEvents, declaredValues } from "../support/arbitrary-event.js";

const readCreate = decoder(CreateRequestSchema);
const readBatch = decoder(BatchCreateRequestSchema);

function decoder(schema: DescMessage) {
  const decode = eventMessageDecoder(schema);
  if (!decode) throw new Error(`no decoder for ${schema.typeName}`);
  return decode;
}

// Short and long (lengths of two bytes), ASCII and not, a byte order mark, lone surrogates (toBinary writes U+FFFD).
const text = fc.oneof(
  fc.constant(""),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: "grapheme", minLength: 40, maxLength: 200 }),
  fc.string({ unit: fc.constantFrom("a", "\ud800", "é", "😀", "\ufeff", "\u0000"), maxLength: 50 }),
);

/** Events as clients send them: every field, values of ordinary size, which the reader must take itself. */
const ordinary = auditEvents({
  text,
  int64: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 1n << 40n })),
  timestamp: fc.record({
    seconds: fc.bigInt({ min: 0n, max: 253402300799n }),
    nanos: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
  }),
  int32: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
  double: fc.oneof(fc.constant(0), fc.constant(-0), fc.double(), fc.integer()),
  // Declared or not: an open enum holds any number.
  enumValue: (e) => fc.oneof(declaredValues(e), fc.integer({ min: 0, max: 3 })),
  listMax: 4,
  structDepth: 4,
});

/** Any value a message can hold: negative and huge numbers, which the reader may leave to fromBinary. */
const any = auditEvents({
  text,
  int64: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  timestamp: fc.record({
    seconds: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
    nanos: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  }),
  int32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  double: fc.double(),
  enumValue: () => fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  listMax: 3,
  structDepth: 3,
});

/** fromBinary's result, or its error. */
function theirs(schema: DescMessage, bytes: Uint8Array): { message?: unknown; error?: unknown } {
  try {
    return { message: fromBinary(schema, bytes) };
  } catch (error) {
    return { error };
  }
}

/** Whatever the reader returns must be what fromBinary returns; undefined leaves the bytes to fromBinary. */
function expectAgrees(schema: DescMessage, decode: ReturnType<typeof decoder>, bytes: Uint8Array) {
  const ours = decode(bytes);
  if (ours === undefined) return false;
  const expected = theirs(schema, bytes);
  expect(expected.error).toBeUndefined();
  expect(ours).toStrictEqual(expected.message);
  return true;
}

function encode<D extends DescMessage>(schema: D, init: MessageInitShape<D>) {
  return toBinary(schema, create(schema, init));
}

test("reads every ordinary event itself, as fromBinary does", () => {
  fc.assert(
    fc.property(ordinary, text, (event, tenant) => {
      expect(expectAgrees(CreateRequestSchema, readCreate, encode(CreateRequestSchema, { tenant, event }))).toBe(true);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.array(ordinary, { maxLength: 20 }), text, (events, tenant) => {
      const bytes = encode(BatchCreateRequestSchema, { tenant, events });
      expect(expectAgrees(BatchCreateRequestSchema, readBatch, bytes)).toBe(true);
    }),
    { numRuns: 200 },
  );
});

test("agrees with fromBinary on any values, or leaves them to it", () => {
  fc.assert(
    fc.property(fc.array(any, { maxLength: 5 }), (events) => {
      expectAgrees(BatchCreateRequestSchema, readBatch, encode(BatchCreateRequestSchema, { events }));
    }),
    { numRuns: 500 },
  );
});

/** Damage of every kind: a byte changed, bytes cut, inserted or repeated. */
const mutated = fc
  .tuple(fc.array(ordinary, { minLength: 1, maxLength: 3 }), fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 6 }))
  .chain(([events, at, span, inserted]) => {
    const bytes = encode(BatchCreateRequestSchema, { tenant: "t", events });
    const i = at % bytes.length;
    const j = Math.min(bytes.length, i + (span % 16));
    return fc.constantFrom(
      Uint8Array.from(bytes.map((b, k) => (k === i ? b ^ (1 << (span % 8)) : b))),
      bytes.subarray(0, i),
      Uint8Array.from([...bytes.subarray(0, i), ...inserted, ...bytes.subarray(i)]),
      Uint8Array.from([...bytes.subarray(0, j), ...bytes.subarray(i, j), ...bytes.subarray(j)]),
    );
  });

test("on damaged bytes, returns only what fromBinary returns, never a message fromBinary refuses", () => {
  let taken = 0;
  fc.assert(
    fc.property(mutated, (bytes) => {
      if (expectAgrees(BatchCreateRequestSchema, readBatch, bytes)) taken++;
    }),
    { numRuns: 3000 },
  );
  // Some damage leaves a valid message (a changed letter): the reader still reads those.
  expect(taken).toBeGreaterThan(0);
});

test("leaves to fromBinary what it would keep or merge: unknown fields, a message field twice, invalid UTF-8", () => {
  const event = toBinary(AuditEventSchema, create(AuditEventSchema, { action: "a", actor: { id: "x" } }));
  const cases = {
    "unknown field": new BinaryWriter().uint32(99).tag(2, WireType.LengthDelimited).bytes(event).finish(),
    "unknown field inside an event": new BinaryWriter()
      .tag(2, WireType.LengthDelimited)
      .bytes(Uint8Array.from([...event, 0xf8, 0x06, 0x01]))
      .finish(),
    "event given twice, merged": new BinaryWriter()
      .tag(2, WireType.LengthDelimited)
      .bytes(event)
      .tag(2, WireType.LengthDelimited)
      .bytes(event)
      .finish(),
    "invalid UTF-8": new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .bytes(Uint8Array.from([0x61, 0xff]))
      .finish(),
    "wrong wire type": new BinaryWriter().tag(1, WireType.Varint).uint32(5).finish(),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    expect(readCreate(bytes), name).toBeUndefined();
  }
  expect(theirs(CreateRequestSchema, cases["invalid UTF-8"]).error).toBeInstanceOf(Error);
  expect(
    theirs(CreateRequestSchema, cases["unknown field inside an event"]).message as { event: { $unknown: unknown[] } },
  ).toHaveProperty("event.$unknown");
});

// Struct entries and Values built by hand, in encodings toBinary never writes.
const value = (kind: Uint8Array) => new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(kind).finish();
const key = (k: string) => new BinaryWriter().tag(1, WireType.LengthDelimited).string(k).finish();
const concat = (parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const entry = (...parts: Uint8Array[]) =>
  new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(concat(parts)).finish();
/** A CreateRequest whose event holds these Struct entries as its attributes. */
const withStruct = (...entries: Uint8Array[]) => {
  const event = new BinaryWriter().tag(14, WireType.LengthDelimited).bytes(concat(entries)).finish();
  return new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(event).finish();
};
const number = new BinaryWriter().tag(2, WireType.Bit64).double(1.5).finish();
const string = new BinaryWriter().tag(3, WireType.LengthDelimited).string("s").finish();

test("reads Struct entries and Values as fromBinary does: missing parts, repeated keys, __proto__", () => {
  const read = [
    withStruct(entry(key("a"), value(new Uint8Array(0)))),
    withStruct(entry(value(number))),
    withStruct(entry(key("a"))),
    withStruct(entry(key("a"), value(number)), entry(key("b")), entry(key("a"), value(string))),
    withStruct(entry(key("1"), value(number)), entry(key("0"), value(string))),
  ];
  for (const bytes of read) expect(expectAgrees(CreateRequestSchema, readCreate, bytes)).toBe(true);
  const proto = withStruct(entry(key("__proto__"), value(number)));
  expect(expectAgrees(CreateRequestSchema, readCreate, proto)).toBe(true);
  const attributes = readCreate(proto) as unknown as { event: { attributes: object } };
  expect(Object.keys(attributes.event.attributes)).toEqual(["__proto__"]);
  expect(Object.getPrototypeOf(attributes.event.attributes)).toBe(Object.prototype);
  const twoKinds = withStruct(entry(key("a"), value(Uint8Array.from([...number, ...string]))));
  expect(readCreate(twoKinds)).toBeUndefined();
});

test("is offered only for requests made of AuditEvents and strings", () => {
  const made = AuditService.methods.filter((m) => eventMessageDecoder(m.input)).map((m) => m.name);
  expect(made).toEqual(["Create", "BatchCreate", "GetEvent", "CreateStreamTicket"]);
  for (const schema of [ListRequestSchema, AuditEventSchema]) {
    expect(eventMessageDecoder(schema), schema.typeName).toBeUndefined();
  }
});

const writeBatch = eventMessageEncoder(BatchCreateResponseSchema);

/**
 * The answer the writer gives for the events read from `bytes` (attributes copied from the request where the reader
 * kept their bytes) must be toBinary's for fromBinary's events. Returns how many attributes were copied.
 */
function expectAnswerAgrees(bytes: Uint8Array): number {
  const ours = readBatch(bytes) as unknown as { events: { attributes?: JsonObject }[] } | undefined;
  if (ours === undefined || !writeBatch) return 0;
  const expected = theirs(BatchCreateRequestSchema, bytes).message as { events: [] };
  const answer = Buffer.from(writeBatch(create(BatchCreateResponseSchema, { events: ours.events as [] })));
  const reference = Buffer.from(toBinary(BatchCreateResponseSchema, create(BatchCreateResponseSchema, expected)));
  expect(answer.toString("hex")).toBe(reference.toString("hex"));
  return ours.events.filter((e) => e.attributes && readStructBytes(e.attributes)).length;
}

test("an answer copies a read event's attributes only where the writer would write the same bytes", () => {
  let copied = 0;
  fc.assert(
    fc.property(fc.array(ordinary, { maxLength: 10 }), (events) => {
      copied += expectAnswerAgrees(encode(BatchCreateRequestSchema, { tenant: "t", events }));
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(mutated, (bytes) => {
      expectAnswerAgrees(bytes);
    }),
    { numRuns: 3000 },
  );
  // toBinary's own encodings are the common case, and are copied.
  expect(copied).toBeGreaterThan(100);

  const kept = (bytes: Uint8Array) => {
    const read = readCreate(bytes) as unknown as { event: { attributes: JsonObject } };
    return readStructBytes(read.event.attributes) !== undefined;
  };
  const overlong = (kind: Uint8Array) => Uint8Array.from([0x12, 0x80 | kind.length, 0x00, ...kind]);
  const canonical = withStruct(entry(key("a"), value(number)), entry(key("b"), value(string)));
  const others = {
    "a Value with no kind": withStruct(entry(key("a"), value(new Uint8Array(0)))),
    "no key": withStruct(entry(value(number))),
    "no value": withStruct(entry(key("a"))),
    "value before key": withStruct(entry(value(number), key("a"))),
    "a key twice": withStruct(
      entry(key("a"), value(number)),
      entry(key("b"), value(number)),
      entry(key("a"), value(string)),
    ),
    "array-index keys": withStruct(entry(key("1"), value(number)), entry(key("0"), value(string))),
    __proto__: withStruct(entry(key("__proto__"), value(number))),
    "a length longer than it needs": withStruct(entry(key("a"), overlong(number))),
    "a null_value other than 0": withStruct(entry(key("a"), value(Uint8Array.from([0x08, 0x01])))),
    "a bool_value of 2": withStruct(entry(key("a"), value(Uint8Array.from([0x20, 0x02])))),
    NaN: withStruct(entry(key("a"), value(new BinaryWriter().tag(2, WireType.Bit64).double(Number.NaN).finish()))),
  };
  expect(kept(canonical)).toBe(true);
  for (const [name, bytes] of Object.entries(others)) {
    expect(kept(bytes), name).toBe(false);
    // A CreateRequest's event (field 2) reads as a BatchCreateRequest's one event (field 2).
    expectAnswerAgrees(bytes);
  }
});
