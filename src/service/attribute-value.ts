import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import type { StoredTemplateAttribute } from "../store/schema.js";
import { parseDateTime } from "./date-time.js";

const INTEGER = /^[+-]?[0-9]+$/;
const FLOAT = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const BOOLEAN = /^(?:true|false)$/i;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A published attribute value as the JSON its template type stores, or undefined when it is not a valid value of
 * that type. Integers are numbers while they fit a double exactly and decimal strings beyond (up to 64 bits);
 * floats are numbers; booleans are true/false in any case; timestamps are RFC 3339 with an offset, stored in UTC in
 * the protobuf JSON form.
 */
export function parseAttributeValue(type: StoredTemplateAttribute["type"], raw: string): JsonValue | undefined {
  switch (type) {
    case "STRING":
      return raw;
    case "INTEGER": {
      if (!INTEGER.test(raw)) return undefined;
      const value = BigInt(raw);
      if (value < INT64_MIN || value > INT64_MAX) return undefined;
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : value.toString();
    }
    case "FLOAT": {
      if (!FLOAT.test(raw)) return undefined;
      const n = Number(raw);
      return Number.isFinite(n) ? n : undefined;
    }
    case "BOOLEAN":
      return BOOLEAN.test(raw) ? raw.toLowerCase() === "true" : undefined;
    case "TIMESTAMP":
      return parseRfc3339(raw);
  }
}

function parseRfc3339(raw: string): string | undefined {
  const timestamp = parseDateTime(raw, { zoneRequired: true });
  return timestamp && (toJson(TimestampSchema, timestamp) as string);
}
