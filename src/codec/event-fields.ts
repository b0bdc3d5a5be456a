import { type DescEnum, type DescField, type DescMessage, getOption, ScalarType } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { FieldBehavior, field_behavior } from "../../gen/google/api/field_behavior_pb.js";

/**
 * The fields of AuditEvent and of the messages inside it, as the hand-made codec (event-binary-reader.ts,
 * event-binary-writer.ts) and the content hash (event-content.ts) take them apart. Everything here is read from the
 * descriptors once, at module load: a field added to the contract is read, written and hashed without an edit, and a
 * field of a kind this table does not know makes `uncoveredFields` name it, so the codec's tests fail until it is
 * taught (test/codec/coverage.test.ts). Until then the messages holding such a field are left to protobuf-es.
 */

/** How a field is held and encoded; one kind per representation protobuf-es gives it. */
export const Kind = {
  /** string, implicit presence: written unless "". */
  String: 0,
  /** repeated string: one length-delimited record per element, even "". */
  Strings: 1,
  Bool: 2,
  /** int32, a signed varint (negatives take ten bytes). */
  Int32: 3,
  /** An open enum, held and encoded as an int32; its JSON is the value's name. */
  Enum: 4,
  /** int64 as a bigint, a signed varint. */
  Int64: 5,
  Double: 6,
  /** A message field, absent when unset. */
  Message: 7,
  /** repeated message. */
  Messages: 8,
  /** google.protobuf.Struct, which protobuf-es holds as a JSON object. */
  Struct: 9,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

export interface FieldSpec {
  readonly desc: DescField;
  /** The property protobuf-es holds the field in. */
  readonly name: string;
  /** The key toJson writes it under. */
  readonly jsonName: string;
  /** `"jsonName":`, as canonical JSON writes the key. */
  readonly jsonKey: string;
  readonly number: number;
  readonly kind: Kind;
  readonly wireType: WireType;
  /** The field's tag, (number << 3) | wireType. */
  readonly tag: number;
  /** Marked `(google.api.field_behavior) = OUTPUT_ONLY`: set by the service, so not part of what a client sent. */
  readonly outputOnly: boolean;
  /** Kind.Message and Kind.Messages: the fields of the message held. */
  readonly message: MessageSpec | undefined;
  /** Kind.Enum: its values, for their JSON names. */
  readonly enum: DescEnum | undefined;
  /** Kind.Enum: each value's JSON name as JSON text (`"OUTCOME_STATUS_SUCCESS"`), by number. */
  readonly enumJson: Readonly<Record<number, string>> | undefined;
}

export interface MessageSpec {
  readonly desc: DescMessage;
  readonly typeName: string;
  /** In field-number order, the order toBinary writes them in. */
  readonly fields: readonly FieldSpec[];
  /** The fields a client sets (all but OUTPUT_ONLY ones) by JSON name, in the order canonical JSON sorts keys. */
  readonly contentOrder: readonly FieldSpec[];
  /** Every field by JSON name, in the order canonical JSON sorts keys. */
  readonly jsonOrder: readonly FieldSpec[];
  /** Timestamp, whose JSON is an RFC 3339 string. */
  readonly timestamp: boolean;
}

const TIMESTAMP = "google.protobuf.Timestamp";
const STRUCT = "google.protobuf.Struct";

const specs = new Map<string, MessageSpec | string[]>();

/**
 * The codec's view of `desc`, or, when some field (here or in a message inside) is of a kind it does not know, the
 * paths of those fields.
 */
export function messageSpec(desc: DescMessage): MessageSpec | string[] {
  const known = specs.get(desc.typeName);
  if (known) return known;
  // A message met again while its own fields are built holds itself: the codec does not take recursive messages.
  specs.set(desc.typeName, [`${desc.typeName} (recursive)`]);
  const uncovered: string[] = [];
  const fields: FieldSpec[] = [];
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    const made = fieldSpec(field);
    if (Array.isArray(made)) uncovered.push(...made);
    else fields.push(made);
  }
  const spec: MessageSpec | string[] =
    uncovered.length > 0
      ? uncovered
      : {
          desc,
          typeName: desc.typeName,
          fields,
          contentOrder: byJsonName(fields.filter((f) => !f.outputOnly)),
          jsonOrder: byJsonName(fields),
          timestamp: desc.typeName === TIMESTAMP,
        };
  specs.set(desc.typeName, spec);
  return spec;
}

/** Sorted as canonical JSON sorts keys: by UTF-16 code units. */
function byJsonName(fields: FieldSpec[]): FieldSpec[] {
  return [...fields].sort((a, b) => (a.jsonName < b.jsonName ? -1 : a.jsonName > b.jsonName ? 1 : 0));
}

/** The fields of `desc` and of the messages inside it that the codec cannot take, by path; empty when none. */
export function uncoveredFields(desc: DescMessage): string[] {
  const spec = messageSpec(desc);
  return Array.isArray(spec) ? spec : [];
}

function fieldSpec(field: DescField): FieldSpec | string[] {
  // Every spec has the same properties in the same order (one hidden class), so the codec's loops over them stay
  // monomorphic.
  const make = (kind: Kind, wireType: WireType, more?: Pick<FieldSpec, "message" | "enum">): FieldSpec => ({
    desc: field,
    name: field.localName,
    jsonName: field.jsonName,
    jsonKey: `${JSON.stringify(field.jsonName)}:`,
    number: field.number,
    kind,
    wireType,
    tag: (field.number << 3) | wireType,
    outputOnly: getOption(field, field_behavior).includes(FieldBehavior.OUTPUT_ONLY),
    message: more?.message,
    enum: more?.enum,
    enumJson: more?.enum && Object.fromEntries(more.enum.values.map((v) => [v.number, JSON.stringify(v.name)])),
  });
  const path = `${field.parent.typeName}.${field.name}`;
  if (field.oneof) return [path];
  switch (field.fieldKind) {
    case "scalar": {
      if (field.presence !== FeatureSet_FieldPresence.IMPLICIT) return [path];
      const kind = SCALARS.get(field.scalar);
      return kind ? make(kind[0], kind[1]) : [path];
    }
    case "enum":
      if (field.presence !== FeatureSet_FieldPresence.IMPLICIT || !field.enum.open) return [path];
      return make(Kind.Enum, WireType.Varint, { message: undefined, enum: field.enum });
    case "message": {
      if (field.message.typeName === STRUCT) return make(Kind.Struct, WireType.LengthDelimited);
      // Other well-known types that protobuf-es holds as something else than a message (wrappers, Value, ListValue)
      // have no place here.
      if (field.message.typeName.startsWith("google.protobuf.") && field.message.typeName !== TIMESTAMP) return [path];
      if (field.delimitedEncoding) return [path];
      const message = messageSpec(field.message);
      if (Array.isArray(message)) return message;
      return make(Kind.Message, WireType.LengthDelimited, { message, enum: undefined });
    }
    case "list":
      if (field.listKind === "scalar" && field.scalar === ScalarType.STRING) {
        return make(Kind.Strings, WireType.LengthDelimited);
      }
      if (field.listKind === "message" && !field.delimitedEncoding && !field.message.typeName.startsWith("google.")) {
        const message = messageSpec(field.message);
        if (Array.isArray(message)) return message;
        return make(Kind.Messages, WireType.LengthDelimited, { message, enum: undefined });
      }
      return [path];
    default:
      return [path];
  }
}

const SCALARS = new Map<ScalarType, [Kind, WireType]>([
  [ScalarType.STRING, [Kind.String, WireType.LengthDelimited]],
  [ScalarType.BOOL, [Kind.Bool, WireType.Varint]],
  [ScalarType.INT32, [Kind.Int32, WireType.Varint]],
  [ScalarType.INT64, [Kind.Int64, WireType.Varint]],
  [ScalarType.DOUBLE, [Kind.Double, WireType.Bit64]],
]);

/** The event as the codec takes it; a failure here is a contract change the codec must be taught (see above). */
export const EVENT = messageSpec(AuditEventSchema);

/**
 * The message `field` of a request or response holds AuditEvents, one or a list, that the codec can take: these are
 * the messages the reader and writer are offered for, beside plain strings.
 */
export function holdsEvents(field: DescField): boolean {
  if (Array.isArray(EVENT)) return false;
  return (
    (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) &&
    field.message.typeName === EVENT.typeName
  );
}
