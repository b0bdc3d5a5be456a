import { create, toJson } from "@bufbuild/protobuf";
import fc from "fast-check";
import { expect, test } from "vitest";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { canonicalJson } from "../../src/service/event-input.js";
import { eventLeafJson } from "../../src/vlog/leaf.js";
import { auditEvents } from "../support/arbitrary-event.js";

// Short and long, ASCII and not, with lone surrogates (JSON.stringify escapes them on both sides).
const text = fc.oneof(
  fc.constant(""),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", minLength: 20, maxLength: 80 }),
  fc.string({ unit: fc.constantFrom("a", "\ud800", "é", "😀", '"', "\\", "\n", "\u007f"), maxLength: 30 }),
);
const int64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));
const event = auditEvents({
  text,
  int64,
  // Every timestamp toJson accepts: 0001-01-01 to 9999-12-31, any nanos.
  timestamp: fc.record({
    seconds: fc.oneof(fc.constant(0n), fc.bigInt({ min: -62135596800n, max: 253402300799n })),
    nanos: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 0, max: 999 }).map((n) => n * 1_000_000),
      fc.integer({ min: 0, max: 999_999 }).map((n) => n * 1000),
      fc.integer({ min: 0, max: 999_999_999 }),
    ),
  }),
  double: fc.oneof(fc.constant(0), fc.constant(-0), fc.double(), fc.integer()),
  outcomeStatus: fc.oneof(fc.constantFrom(0, 1, 2), fc.integer()),
  rolesMax: 4,
  attributesDepth: 4,
});

test("the leaf JSON is canonicalJson(toJson(event)) for every generated event", () => {
  fc.assert(
    fc.property(event, (init) => {
      const message = create(AuditEventSchema, init);
      expect(eventLeafJson(message)).toBe(canonicalJson(toJson(AuditEventSchema, message)));
    }),
    { numRuns: 3000 },
  );
});
