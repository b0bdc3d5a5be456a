import { create, type DescMessage, getOption, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import fc from "fast-check";
import { expect, test } from "vitest";
import { AuditEventSchema, RequestInfoSchema } from "../../gen/audit/v1/event_pb.js";
import { FieldBehavior, field_behavior } from "../../gen/google/api/field_behavior_pb.js";
import { canonicalContent, canonicalJson, jsonString } from "../../src/codec/event-content.js";
import { readEvent } from "../../src/service/event-input.js";
import { auditEvents, declaredValues, type FieldValues, messageValues } from "../support/arbitrary-event.js";

const text = fc.oneof(fc.constant(""), fc.string({ maxLength: 10 }), fc.string({ unit: "grapheme", maxLength: 30 }));
// Valid values (what readEvent lets through to the hash); timestamps with 0, 3, 6 and 9 significant fractional digits.
const valid: FieldValues = {
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
  int32: fc.integer(),
  double: fc.oneof(fc.constant(0), fc.constant(-0), fc.double({ noNaN: true, noDefaultInfinity: true })),
  enumValue: declaredValues,
  listMax: 3,
  structDepth: 3,
};
const event = auditEvents(valid);

/** toJson's object without the fields the contract marks OUTPUT_ONLY, at every level. */
function clientContent(desc: DescMessage, json: JsonObject): JsonObject {
  const out: JsonObject = { ...json };
  for (const field of desc.fields) {
    const value = out[field.jsonName];
    if (value === undefined) continue;
    if (getOption(field, field_behavior).includes(FieldBehavior.OUTPUT_ONLY)) delete out[field.jsonName];
    else if (field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.")) {
      out[field.jsonName] = clientContent(field.message, value as JsonObject);
    } else if (field.fieldKind === "list" && field.listKind === "message") {
      const items = value as JsonObject[];
      out[field.jsonName] = items.map((item) => clientContent(field.message, item));
    }
  }
  return out;
}

test("the canonical content is canonicalJson of toJson without the output-only fields", () => {
  // The fields the contract marks OUTPUT_ONLY are the ones the service sets; none is part of what a client sent.
  const outputOnly = AuditEventSchema.fields.filter((f) =>
    getOption(f, field_behavior).includes(FieldBehavior.OUTPUT_ONLY),
  );
  expect(outputOnly.map((f) => f.name)).toEqual(["tenant", "sequence", "received_at", "expires_at"]);
  fc.assert(
    fc.property(event, (init) => {
      const message = create(AuditEventSchema, init);
      const expected = canonicalJson(clientContent(AuditEventSchema, toJson(AuditEventSchema, message) as JsonObject));
      expect(canonicalContent(message)).toBe(expected);
      // Again, with the attributes' text that the first call made (structJson) taken as it is.
      expect(canonicalContent(message)).toBe(expected);
    }),
    { numRuns: 3000 },
  );
});

test("the stored request is toJson's", () => {
  // Every field of RequestInfo, from its descriptor; durations as readEvent accepts them.
  const request = messageValues(RequestInfoSchema, {
    ...valid,
    double: fc.oneof(fc.constant(0), fc.constant(-0), fc.double({ min: 0, noNaN: true, noDefaultInfinity: true })),
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

test("strings are written as JSON.stringify writes them, and canonical JSON as JSON.stringify writes each part", () => {
  const anyText = fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({
      unit: fc.constantFrom("a", '"', "\\", "\u0000", "\u001f", "\u007f", "\u2028", "\ud800", "\udc00", "😀"),
      maxLength: 20,
    }),
  );
  fc.assert(
    fc.property(anyText, (s) => {
      expect(jsonString(s)).toBe(JSON.stringify(s));
    }),
    { numRuns: 5000 },
  );
  /** Keys sorted by UTF-16 code units, every key and scalar written by JSON.stringify. */
  const reference = (v: JsonValue): string =>
    Array.isArray(v)
      ? `[${v.map(reference).join(",")}]`
      : v !== null && typeof v === "object"
        ? `{${Object.keys(v)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${reference(v[k] as JsonValue)}`)
            .join(",")}}`
        : JSON.stringify(v);
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
      expect(canonicalJson(v as JsonValue)).toBe(reference(v as JsonValue));
    }),
    { numRuns: 3000 },
  );
});
