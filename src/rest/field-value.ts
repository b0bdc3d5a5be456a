import {
  type DescEnum,
  type DescField,
  type DescMessage,
  fromJson,
  type JsonValue,
  ScalarType,
} from "@bufbuild/protobuf";

/** What a path variable or query parameter can set: a scalar, an enum, or a well-known type with a string form. */
export type Leaf =
  | { kind: "scalar"; scalar: ScalarType }
  | { kind: "enum"; enum: DescEnum }
  | { kind: "message"; message: DescMessage };

/** The value is unusable for the field; the message says why, without naming the parameter. */
export class FieldValueError extends Error {}

const wrappers = new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);
/** Written as a proto-JSON string, validated by the protobuf runtime. */
const stringWkts = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"]);
/** Written as JSON text. */
const jsonWkts = new Set(["google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"]);

/** The element type of a singular or repeated field; undefined for maps. */
export function leafOf(field: DescField): Leaf | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: field.scalar };
    case "enum":
      return { kind: "enum", enum: field.enum };
    case "message":
      return { kind: "message", message: field.message };
    case "list":
      if (field.listKind === "scalar") return { kind: "scalar", scalar: field.scalar };
      if (field.listKind === "enum") return { kind: "enum", enum: field.enum };
      return { kind: "message", message: field.message };
    case "map":
      return undefined;
  }
}

/** Whether a string from a URL can set this leaf. */
export function hasStringForm(leaf: Leaf): boolean {
  if (leaf.kind !== "message") return true;
  const name = leaf.message.typeName;
  return wrappers.has(name) || stringWkts.has(name) || jsonWkts.has(name);
}

/** A string from a path or query string as the proto-JSON value of the leaf. */
export function leafFromString(leaf: Leaf, text: string): JsonValue {
  switch (leaf.kind) {
    case "scalar":
      return scalarFromString(leaf.scalar, text);
    case "enum":
      return enumFromString(leaf.enum, text);
    case "message":
      return wktFromString(leaf.message, text);
  }
}

const INT = /^-?[0-9]+$/;
const UINT = /^[0-9]+$/;
const FLOAT = /^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9_-]*={0,2})$/;
const FLOAT32_MAX = 3.4028234663852886e38;

function scalarFromString(scalar: ScalarType, text: string): JsonValue {
  switch (scalar) {
    case ScalarType.STRING:
      return text;
    case ScalarType.BYTES:
      if (!BASE64.test(text)) throw new FieldValueError(`"${text}" is not base64`);
      return text;
    case ScalarType.BOOL:
      if (text === "true") return true;
      if (text === "false") return false;
      throw new FieldValueError(`"${text}" is not a boolean (true or false)`);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return integer(text, INT, -(2 ** 31), 2 ** 31 - 1, "int32");
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return integer(text, UINT, 0, 2 ** 32 - 1, "uint32");
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return integer64(text, INT, -(2n ** 63n), 2n ** 63n - 1n, "int64");
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return integer64(text, UINT, 0n, 2n ** 64n - 1n, "uint64");
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT: {
      if (text === "NaN" || text === "Infinity" || text === "-Infinity") return text;
      const value = Number(text);
      const single = scalar === ScalarType.FLOAT;
      if (!FLOAT.test(text) || !Number.isFinite(value) || (single && Math.abs(value) > FLOAT32_MAX)) {
        throw new FieldValueError(`"${text}" is not a ${single ? "float" : "double"}`);
      }
      return value;
    }
  }
}

function integer(text: string, pattern: RegExp, min: number, max: number, type: string): number {
  const value = Number(text);
  if (!pattern.test(text) || value < min || value > max) throw new FieldValueError(`"${text}" is not an ${type}`);
  return value;
}

/** As a string, the proto-JSON form of 64-bit integers: a JS number would lose precision. */
function integer64(text: string, pattern: RegExp, min: bigint, max: bigint, type: string): string {
  if (pattern.test(text)) {
    const value = BigInt(text);
    if (value >= min && value <= max) return value.toString();
  }
  throw new FieldValueError(`"${text}" is not an ${type}`);
}

function enumFromString(desc: DescEnum, text: string): JsonValue {
  if (desc.values.some((v) => v.name === text)) return text;
  if (INT.test(text)) {
    const number = Number(text);
    const known = desc.value[number];
    if (known) return known.name;
    // Open enums keep unknown numbers, as on the wire.
    if (desc.open && number >= -(2 ** 31) && number < 2 ** 31) return number;
  }
  throw new FieldValueError(
    `"${text}" is not a value of ${desc.typeName} (${desc.values.map((v) => v.name).join(", ")})`,
  );
}

function wktFromString(message: DescMessage, text: string): JsonValue {
  const name = message.typeName;
  if (wrappers.has(name)) {
    const inner = leafOf(message.field.value as DescField);
    return leafFromString(inner as Leaf, text);
  }
  let json: JsonValue = text;
  if (jsonWkts.has(name)) {
    try {
      json = JSON.parse(text) as JsonValue;
    } catch {
      throw new FieldValueError(`"${text}" is not JSON, as ${name} requires`);
    }
  } else if (!stringWkts.has(name)) {
    throw new FieldValueError(`${name} has no string form; set its fields instead`);
  }
  try {
    fromJson(message, json);
  } catch (error) {
    throw new FieldValueError(`"${text}" is not a valid ${name}: ${(error as Error).message}`);
  }
  return json;
}
