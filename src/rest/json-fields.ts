import {
  type DescField,
  type DescMessage,
  fromJson,
  type JsonObject,
  type JsonValue,
  type Registry,
} from "@bufbuild/protobuf";

/** A field of a JSON request that does not decode, by its path in proto names (`logs[2].context.key`). */
export interface JsonFieldFault {
  field: string;
  description: string;
}

/**
 * The first field of `json` that keeps it from decoding as `desc`, found by decoding one field at a time with
 * protobuf-es itself, so it agrees with the real decoder. protobuf-es names the field's type but not where it sits in
 * the request; this names the place. Called only after a decode has failed, so the extra decoding costs nothing on
 * good requests. Undefined when no single field is at fault.
 */
export function firstJsonFieldFault(
  desc: DescMessage,
  json: JsonObject,
  registry: Registry,
  path = "",
): JsonFieldFault | undefined {
  for (const [key, value] of Object.entries(json)) {
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    const at = `${path}${field?.name ?? key}`;
    if (!field) return { field: at, description: "is not a known field" };
    if (value === null) continue;
    const fault = fieldFault(desc, field, key, value, at, registry);
    if (fault) return fault;
  }
  return undefined;
}

function fieldFault(
  desc: DescMessage,
  field: DescField,
  key: string,
  value: JsonValue,
  at: string,
  registry: Registry,
): JsonFieldFault | undefined {
  const nested = nestedMessage(field);
  if (field.fieldKind === "list") {
    if (!Array.isArray(value)) return { field: at, description: "must be an array" };
    for (const [i, item] of value.entries()) {
      const fault = nested
        ? messageFault(nested, item, `${at}[${i}]`, registry)
        : decodeFault(desc, key, [item], `${at}[${i}]`, registry);
      if (fault) return fault;
    }
    return undefined;
  }
  if (field.fieldKind === "map") {
    if (!isObject(value)) return { field: at, description: "must be an object" };
    for (const [entryKey, item] of Object.entries(value)) {
      const fault = nested
        ? messageFault(nested, item, `${at}.${entryKey}`, registry)
        : decodeFault(desc, key, { [entryKey]: item }, `${at}.${entryKey}`, registry);
      if (fault) return fault;
    }
    return undefined;
  }
  return nested ? messageFault(nested, value, at, registry) : decodeFault(desc, key, value, at, registry);
}

/** Message fields are walked into, except well-known types, whose JSON forms only the decoder knows. */
function nestedMessage(field: DescField): DescMessage | undefined {
  const message =
    field.fieldKind === "message" ||
    (field.fieldKind === "list" && field.listKind === "message") ||
    (field.fieldKind === "map" && field.mapKind === "message")
      ? field.message
      : undefined;
  return message && !message.typeName.startsWith("google.protobuf.") ? message : undefined;
}

function messageFault(desc: DescMessage, value: JsonValue, at: string, registry: Registry) {
  if (!isObject(value)) return { field: at, description: "must be an object" };
  return firstJsonFieldFault(desc, value, registry, `${at}.`);
}

function decodeFault(desc: DescMessage, key: string, value: JsonValue, at: string, registry: Registry) {
  try {
    fromJson(desc, { [key]: value }, { registry });
    return undefined;
  } catch (error) {
    // protobuf-es says "cannot decode field T.f from JSON: <why>"; its cause holds just the why.
    const cause = (error as Error).cause;
    return { field: at, description: cause instanceof Error ? cause.message : (error as Error).message };
  }
}

function isObject(value: JsonValue): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
