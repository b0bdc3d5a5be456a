import {
  type DescEnum,
  type DescField,
  type DescMessage,
  type JsonObject,
  type MessageInitShape,
  ScalarType,
} from "@bufbuild/protobuf";
import fc from "fast-check";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";

type EventInit = MessageInitShape<typeof AuditEventSchema>;

const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/**
 * The values each kind of field takes: the wire codec wants any value a message can hold, the content hash valid
 * ones. A field of a kind with no entry here makes `messageValues` throw, so a contract change that brings a new kind
 * of field fails the tests that generate messages until it is given values.
 */
export interface FieldValues {
  text: fc.Arbitrary<string>;
  int64: fc.Arbitrary<bigint>;
  int32: fc.Arbitrary<number>;
  double: fc.Arbitrary<number>;
  /** The numbers an enum field takes: its declared values, or any int32 (an open enum holds any). */
  enumValue(desc: DescEnum): fc.Arbitrary<number>;
  timestamp: fc.Arbitrary<{ seconds: bigint; nanos: number }>;
  /** The most elements a repeated field is given. */
  listMax: number;
  /** How deep the JSON values of a google.protobuf.Struct nest. */
  structDepth: number;
}

/** An enum's declared values, for generators of valid messages. */
export const declaredValues = (desc: DescEnum) => fc.constantFrom(...desc.values.map((v) => v.number));

/**
 * Messages of type `desc` with every field the descriptors list (each message field set or not, recursively), as
 * init shapes for create(). Built from the descriptors, so a field added to the contract is generated too.
 */
export function messageValues<D extends DescMessage>(desc: D, v: FieldValues): fc.Arbitrary<MessageInitShape<D>> {
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) record[field.localName] = fieldValues(field, v);
  return fc.record(record) as unknown as fc.Arbitrary<MessageInitShape<D>>;
}

/** Generated AuditEvents with every field, each message field present or not. */
export function auditEvents(v: FieldValues): fc.Arbitrary<EventInit> {
  return messageValues(AuditEventSchema, v);
}

function fieldValues(field: DescField, v: FieldValues): fc.Arbitrary<unknown> {
  const unknown = () => new Error(`no generator for ${field.parent.typeName}.${field.name}: give it one here`);
  if (field.oneof) throw unknown();
  switch (field.fieldKind) {
    case "scalar":
      return scalarValues(field.scalar, v) ?? fail(unknown());
    case "enum":
      return v.enumValue(field.enum);
    case "message":
      return optional(messageOf(field.message, v) ?? fail(unknown()));
    case "list": {
      const item =
        field.listKind === "scalar"
          ? scalarValues(field.scalar, v)
          : field.listKind === "enum"
            ? v.enumValue(field.enum)
            : messageOf(field.message, v);
      return fc.array(item ?? fail(unknown()), { maxLength: v.listMax });
    }
    default:
      throw unknown();
  }
}

function scalarValues(scalar: ScalarType, v: FieldValues): fc.Arbitrary<unknown> | undefined {
  switch (scalar) {
    case ScalarType.STRING:
      return v.text;
    case ScalarType.INT64:
      return v.int64;
    case ScalarType.INT32:
      return v.int32;
    case ScalarType.DOUBLE:
      return v.double;
    case ScalarType.BOOL:
      return fc.boolean();
    default:
      return undefined;
  }
}

function messageOf(desc: DescMessage, v: FieldValues): fc.Arbitrary<unknown> | undefined {
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return v.timestamp;
    // protobuf-es holds a Struct as a JSON object (a Value cannot hold undefined).
    case "google.protobuf.Struct":
      return fc.dictionary(v.text, fc.jsonValue({ maxDepth: v.structDepth }), {
        maxKeys: 8,
      }) as fc.Arbitrary<JsonObject>;
    default:
      return desc.typeName.startsWith("google.protobuf.") ? undefined : messageValues(desc, v);
  }
}

function fail(error: Error): never {
  throw error;
}
