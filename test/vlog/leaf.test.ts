import { create, toJson } from "@bufbuild/protobuf";
import fc from "fast-check";
import { expect, test } from "vitest";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { canonicalEvent, canonicalJson } from "../../src/codec/event-content.js";
import { auditEvents, declaredValues, type FieldValues } from "../support/arbitrary-event.js";

// Stored events' values: any text (lone surrogates too: JSON.stringify escapes them on both sides), any sequence,
// timestamps with 0, 3, 6 and 9 significant fractional digits, -0 (which proto3 JSON writes), unknown enum numbers.
const text = fc.oneof(
  fc.constant(""),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", minLength: 20, maxLength: 80 }),
  fc.string({ unit: fc.constantFrom("a", "\ud800", "é", "😀", '"', "\\", "\n", "\u007f"), maxLength: 30 }),
);
const values: FieldValues = {
  text,
  int64: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })),
  timestamp: fc.record({
    seconds: fc.oneof(fc.constant(0n), fc.bigInt({ min: -62135596800n, max: 253402300799n })),
    nanos: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 1, max: 999 }).map((n) => n * 1_000_000),
      fc.integer({ min: 1, max: 999_999 }).map((n) => n * 1000),
      fc.integer({ min: 1, max: 999_999_999 }),
    ),
  }),
  int32: fc.integer(),
  double: fc.oneof(fc.constant(0), fc.constant(-0), fc.double({ noNaN: true, noDefaultInfinity: true })),
  enumValue: (desc) => fc.oneof(declaredValues(desc), fc.integer()),
  listMax: 4,
  structDepth: 4,
};

test("the leaf JSON is canonicalJson(toJson(event)), output fields included, for every generated event", () => {
  fc.assert(
    fc.property(auditEvents(values), (init) => {
      const message = create(AuditEventSchema, init);
      expect(canonicalEvent(message)).toBe(canonicalJson(toJson(AuditEventSchema, message)));
    }),
    { numRuns: 3000 },
  );
});
