import {
  create,
  type DescField,
  type DescMessage,
  fromBinary,
  getOption,
  type JsonObject,
  ScalarType,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { expect, test } from "vitest";
import { CreateRequestSchema, CreateResponseSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { type AuditEvent, AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { FieldBehavior, field_behavior } from "../../gen/google/api/field_behavior_pb.js";
import { eventMessageDecoder } from "../../src/codec/event-binary-reader.js";
import { eventMessageEncoder } from "../../src/codec/event-binary-writer.js";
import { canonicalContent, canonicalJson } from "../../src/codec/event-content.js";
import { uncoveredFields } from "../../src/codec/event-fields.js";

/**
 * Every field of AuditEvent and of the messages inside it, walked from the descriptors: each must be read by the
 * hand-made reader, written by the hand-made writer and counted in the content hash. A field the codec does not know
 * fails here by name, rather than being left to protobuf-es on one path and dropped or unhashed on another.
 */

/** A field's path from AuditEvent, and the event with only that field set to a value other than its default. */
interface Case {
  path: string;
  event: AuditEvent;
  outputOnly: boolean;
}

function cases(desc: DescMessage, prefix: string, wrap: (value: object) => object, outputOnly: boolean): Case[] {
  const out: Case[] = [];
  for (const field of desc.fields) {
    const path = `${prefix}${field.name}`;
    const hidden = outputOnly || getOption(field, field_behavior).includes(FieldBehavior.OUTPUT_ONLY);
    const at = (value: unknown) => wrap({ [field.localName]: value });
    const nested = field.fieldKind === "message" && !field.message.typeName.startsWith("google.protobuf.");
    if (nested) {
      // Set but empty, then each of its fields.
      out.push({ path, event: create(AuditEventSchema, at({})), outputOnly: hidden });
      out.push(...cases(field.message, `${path}.`, (value) => at(value), hidden));
    } else {
      out.push({ path, event: create(AuditEventSchema, at(sample(field))), outputOnly: hidden });
    }
  }
  return out;
}

/** A value that is not the field's default, by the field's kind; a kind with none here fails the test. */
function sample(field: DescField): unknown {
  const scalar = (type: ScalarType): unknown => {
    switch (type) {
      case ScalarType.STRING:
        return "x é";
      case ScalarType.BOOL:
        return true;
      case ScalarType.INT32:
      case ScalarType.SINT32:
      case ScalarType.UINT32:
        return 7;
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.UINT64:
        return 1234567890123n;
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return 1.5;
      case ScalarType.BYTES:
        return Uint8Array.of(1, 2);
      default:
        throw new Error(`no sample for ${field.parent.typeName}.${field.name}`);
    }
  };
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar);
    case "enum":
      return field.enum.values.find((v) => v.number !== 0)?.number ?? 1;
    case "list":
      if (field.listKind === "scalar") return [scalar(field.scalar), scalar(field.scalar)];
      if (field.listKind === "enum") return [1];
      return [{}];
    case "map":
      return { k: field.mapKind === "scalar" ? scalar(field.scalar) : {} };
    case "message":
      if (field.message.typeName === "google.protobuf.Timestamp") return { seconds: 1_700_000_000n, nanos: 5_000_000 };
      if (field.message.typeName === "google.protobuf.Struct") return { k: ["v", 1, true, null, { n: 2 }] };
      return {};
  }
}

const all = cases(AuditEventSchema, "", (value) => value, false);
const empty = create(AuditEventSchema);

test("the codec's field tables hold every field of AuditEvent and of the messages inside it", () => {
  expect(uncoveredFields(AuditEventSchema)).toEqual([]);
  // The walk reaches every message: AuditEvent's own fields, and those of Actor, Target, Outcome and RequestInfo.
  expect(all.length).toBeGreaterThan(AuditEventSchema.fields.length);
});

test.each(all.map((c) => [c.path, c] as const))("%s is read by the reader", (_path, c) => {
  const read = eventMessageDecoder(CreateRequestSchema);
  const bytes = toBinary(CreateRequestSchema, create(CreateRequestSchema, { event: c.event }));
  const ours = read?.(bytes);
  // undefined would leave the field to fromBinary: the reader does not know it.
  expect(ours).toBeDefined();
  expect(ours).toStrictEqual(fromBinary(CreateRequestSchema, bytes));
});

test.each(all.map((c) => [c.path, c] as const))("%s is written by the writer", (_path, c) => {
  const write = eventMessageEncoder(CreateResponseSchema);
  const message = create(CreateResponseSchema, { event: c.event });
  expect(write).toBeDefined();
  const ours = Buffer.from(write?.(message) ?? []);
  expect(ours.toString("hex")).toBe(Buffer.from(toBinary(CreateResponseSchema, message)).toString("hex"));
});

test.each(all.map((c) => [c.path, c] as const))("%s is in the content hash unless output-only", (_path, c) => {
  const content = canonicalContent(c.event);
  if (c.outputOnly) {
    expect(content).toBe(canonicalContent(empty));
    return;
  }
  expect(content).not.toBe(canonicalContent(empty));
  const json = toJson(AuditEventSchema, c.event) as JsonObject;
  for (const field of AuditEventSchema.fields) {
    if (getOption(field, field_behavior).includes(FieldBehavior.OUTPUT_ONLY)) delete json[field.jsonName];
  }
  expect(content).toBe(canonicalJson(json));
});
