import type { DescField } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { ListValueSchema, StructSchema, ValueSchema } from "@bufbuild/protobuf/wkt";

/**
 * The tags of google.protobuf.Struct, Value and ListValue, which protobuf-es holds as JSON and the codec encodes from
 * and decodes to JSON itself: read from their descriptors, with the wire type each is written with.
 */
const tag = (field: DescField, wireType: WireType) => (field.number << 3) | wireType;

/** Struct's `map<string, Value> fields`: one length-delimited entry per key. */
export const STRUCT_FIELDS = tag(StructSchema.field.fields, WireType.LengthDelimited);
/** A map entry's key (field 1) and value (field 2), as the protobuf encoding defines every map entry. */
export const ENTRY_KEY = (1 << 3) | WireType.LengthDelimited;
export const ENTRY_VALUE = (2 << 3) | WireType.LengthDelimited;
/** ListValue's `repeated Value values`. */
export const LIST_VALUES = tag(ListValueSchema.field.values, WireType.LengthDelimited);

/** Value's oneof `kind`, one tag per JSON type. */
export const NULL_VALUE = tag(ValueSchema.field.nullValue, WireType.Varint);
export const NUMBER_VALUE = tag(ValueSchema.field.numberValue, WireType.Bit64);
export const STRING_VALUE = tag(ValueSchema.field.stringValue, WireType.LengthDelimited);
export const BOOL_VALUE = tag(ValueSchema.field.boolValue, WireType.Varint);
export const STRUCT_VALUE = tag(ValueSchema.field.structValue, WireType.LengthDelimited);
export const LIST_VALUE = tag(ValueSchema.field.listValue, WireType.LengthDelimited);
