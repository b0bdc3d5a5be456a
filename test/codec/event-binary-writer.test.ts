import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { expect, test } from "vitest";
import {
  AuditService,
  BatchCreateResponseSchema,
  CreateResponseSchema,
  ListRequestSchema,
  ListResponseSchema,
  TailRequestSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { eventMessageEncoder } from "../../src/codec/event-binary-writer.js";
import { auditEvents, declaredValues } from "../support/arbitrary-event.js";

// Short and long (over 127 bytes, so lengths take two bytes), ASCII and not, with lone surrogates toBinary replaces.
const text = fc.oneof(
  fc.constant(""),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: "grapheme", minLength: 40, maxLength: 200 }),
  fc.string({ unit: fc.constantFrom("a", "\ud800", "é", "😀"), maxLength: 50 }),
);
const int64 = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 1n << 53n }),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
);
const event = auditEvents({
  text,
  int64,
  timestamp: fc.record({
    seconds: int64,
    nanos: fc.oneof(fc.constant(0), fc.integer({ min: -999_999_999, max: 999_999_999 })),
  }),
  int32: fc.oneof(fc.constant(0), fc.integer()),
  double: fc.oneof(fc.constant(0), fc.constant(-0), fc.double(), fc.integer()),
  enumValue: (e) => fc.oneof(declaredValues(e), fc.integer()),
  listMax: 4,
  structDepth: 4,
});

function expectSameBytes<D extends DescMessage>(schema: D, init: MessageInitShape<D>) {
  const encode = eventMessageEncoder(schema);
  if (!encode) throw new Error(`no encoder for ${schema.typeName}`);
  const message = create(schema, init);
  const ours = Buffer.from(encode(message));
  const theirs = Buffer.from(toBinary(schema, message));
  // Hex shows where they part; only small messages are worth printing.
  if (!ours.equals(theirs))
    expect(ours.subarray(0, 4096).toString("hex")).toBe(theirs.subarray(0, 4096).toString("hex"));
  expect(ours.equals(theirs)).toBe(true);
}

test("writes every generated event byte for byte as toBinary does", () => {
  fc.assert(
    fc.property(event, (init) => expectSameBytes(CreateResponseSchema, { event: init })),
    { numRuns: 2000 },
  );
});

test("writes lists of events and their page token as toBinary does, however large", () => {
  fc.assert(
    fc.property(fc.array(event, { maxLength: 30 }), text, (events, nextPageToken) => {
      expectSameBytes(ListResponseSchema, { events, nextPageToken });
      expectSameBytes(BatchCreateResponseSchema, { events });
    }),
    { numRuns: 100 },
  );
  // A message over 2 MiB: nested lengths of three and four bytes.
  const big = {
    action: "x",
    attributes: { blob: "y".repeat(3 << 20), list: Array.from({ length: 500 }, (_, i) => i) },
  };
  expectSameBytes(ListResponseSchema, { events: [big, big] });
});

test("gives each message's own bytes when they are copied before the next is encoded, past any earlier size", () => {
  // One buffer serves every call: a page after a message that outgrew what is kept, and after a small one, is whole.
  const encode = eventMessageEncoder(ListResponseSchema);
  if (!encode) throw new Error("no encoder for ListResponse");
  const huge = { action: "x", attributes: { blob: "y".repeat(5 << 20) } };
  fc.assert(
    fc.property(fc.array(fc.array(event, { maxLength: 20 }), { minLength: 2, maxLength: 4 }), (pages) => {
      const messages = [
        ...pages.map((events) => ({ events })),
        { events: [huge] },
        ...pages.map((events) => ({ events })),
      ].map((init) => create(ListResponseSchema, init));
      const copies = messages.map((message) => Buffer.from(encode(message)));
      messages.forEach((message, i) => {
        expect(copies[i]?.equals(Buffer.from(toBinary(ListResponseSchema, message)))).toBe(true);
      });
    }),
    { numRuns: 10 },
  );
});

test("leaves messages with unknown fields to toBinary, which writes them back", () => {
  const unknown = [{ no: 99, wireType: 0, data: new Uint8Array([42]) }];
  const message = create(ListResponseSchema, {
    events: [create(AuditEventSchema, { action: "a", actor: { id: "x" } })],
  });
  (message.events[0] as { $unknown?: unknown }).$unknown = unknown;
  const actor = message.events[0]?.actor as { $unknown?: unknown };
  actor.$unknown = unknown;
  const encode = eventMessageEncoder(ListResponseSchema);
  expect(Buffer.from(encode?.(message) ?? [])).toEqual(Buffer.from(toBinary(ListResponseSchema, message)));
});

test("is offered only for messages made of AuditEvents and strings", () => {
  const made = AuditService.methods.filter((m) => eventMessageEncoder(m.output)).map((m) => m.name);
  expect(made).toEqual(["Create", "BatchCreate", "Publish", "List", "Tail", "GetEvent"]);
  for (const schema of [ListRequestSchema, TailRequestSchema, AuditEventSchema]) {
    expect(eventMessageEncoder(schema), schema.typeName).toBeUndefined();
  }
});
