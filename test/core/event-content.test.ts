import { create, type JsonObject, toJson } from "@bufbuild/protobuf";
import fc from "fast-check";
import { expect, test } from "vitest";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { canonicalContent, canonicalJson, readEvent } from "../../src/service/event-input.js";
import { auditEvents } from "../support/arbitrary-event.js";

const text = fc.oneof(fc.constant(""), fc.string({ maxLength: 10 }), fc.string({ unit: "grapheme", maxLength: 30 }));
// Valid values (what readEvent lets through to the hash); timestamps with 0, 3, 6 and 9 significant fractional digits.
const event = auditEvents({
  text,
  int64: fc.bigInt({ min: 0n, max: 1n << 40n }),
  timestamp: fc.record({
    seconds: fc.bigInt({ min: 0n, max: 253_402_300_799n }),
    nanos: fc.oneof(
      fc.constant(0),
      fc.integer({ min: 1, max: 999 }).map((n) => n * 1_000_000),
      fc.integer({ min: 1, max: 999_999 }).map((n) => n * 1_000),
      fc.integer({ min: 1, max: 999_999_999 }),
    ),
  }),
  double: fc.oneof(fc.constant(0), fc.constant(-0), fc.double({ noNaN: true, noDefaultInfinity: true })),
  outcomeStatus: fc.constantFrom(0, 1, 2),
  rolesMax: 3,
  attributesDepth: 3,
});

test("the canonical content is canonicalJson of toJson without the output-only fields", () => {
  fc.assert(
    fc.property(event, (init) => {
      const message = create(AuditEventSchema, init);
      const { tenant, sequence, receivedAt, expiresAt, ...content } = toJson(AuditEventSchema, message) as JsonObject;
      const attributes = message.attributes === undefined ? undefined : canonicalJson(message.attributes);
      expect(canonicalContent(message, attributes)).toBe(canonicalJson(content));
    }),
    { numRuns: 3000 },
  );
});

test("the stored request is toJson's", () => {
  const request = fc.record({
    ip: text,
    method: text,
    url: text,
    userAgent: text,
    durationMs: fc.oneof(fc.constant(0), fc.constant(-0), fc.double({ min: 0, noNaN: true, noDefaultInfinity: true })),
    correlationId: text,
    sessionId: text,
  });
  fc.assert(
    fc.property(request, (init) => {
      const message = create(AuditEventSchema, { action: "a", request: init });
      const stored = readEvent(message, "", 0n, []);
      expect(stored?.request).toEqual((toJson(AuditEventSchema, message) as JsonObject).request);
    }),
    { numRuns: 1000 },
  );
});

test("canonical JSON sorts keys at every level and keeps arrays in order", () => {
  expect(canonicalJson({ b: [3, { d: 1, c: "x" }], a: null, é: true })).toBe(
    '{"a":null,"b":[3,{"c":"x","d":1}],"é":true}',
  );
});
