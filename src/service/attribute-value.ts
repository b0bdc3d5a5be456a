import { create, type JsonValue, toJson } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import type { StoredTemplateAttribute } from "../store/schema.js";

const INTEGER = /^[+-]?[0-9]+$/;
const FLOAT = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const BOOLEAN = /^(?:true|false)$/i;
const RFC3339 =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// The protobuf Timestamp range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
const MIN_SECONDS = -62135596800n;
const MAX_SECONDS = 253402300799n;

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
  const m = RFC3339.exec(raw);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetHours = Number(m[9] ?? 0);
  const offsetMinutes = Number(m[10] ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return undefined;
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  const offsetSeconds = (m[8] === "-" ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60);
  const seconds = BigInt(date.getTime() / 1000 - offsetSeconds);
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) return undefined;
  const nanos = Number((m[7] ?? "").padEnd(9, "0"));
  return toJson(TimestampSchema, create(TimestampSchema, { seconds, nanos })) as string;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
