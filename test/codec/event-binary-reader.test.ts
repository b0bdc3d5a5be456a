import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import { expect, test } from "vitest";
import {
  AuditService,
  BatchCreateRequestSchema,
  CreateRequestSchema,
  ListRequestSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { eventMessageDecoder } from "../../src/codec/event-binary-reader.js";
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

test("reads Struct entries and Values as fromBinary does: missing parts, repeated keys, __proto__", () => {
  const value = (kind: Uint8Array) => new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(kind).finish();
  const key = (k: string) => new BinaryWriter().tag(1, WireType.LengthDelimited).string(k).finish();
  const entry = (...parts: Uint8Array[]) =>
    new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .bytes(Uint8Array.from(parts.flatMap((p) => [...p])))
      .finish();
  const withStruct = (...entries: Uint8Array[]) => {
    const struct = Uint8Array.from(entries.flatMap((e) => [...e]));
    const event = new BinaryWriter().tag(14, WireType.LengthDelimited).bytes(struct).finish();
    return new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(event).finish();
  };
  const number = new BinaryWriter().tag(2, WireType.Bit64).double(1.5).finish();
  const string = new BinaryWriter().tag(3, WireType.LengthDelimited).string("s").finish();
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
