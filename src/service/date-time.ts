import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$/;

// The protobuf Timestamp range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
const MIN_SECONDS = -62135596800n;
const MAX_SECONDS = 253402300799n;

/**
 * A date and time in RFC 3339 (`2024-05-01T10:00:00.5+02:00`) or its space-separated form. Unless `zoneRequired`,
 * also the same without a zone, as older APIs send it (`2024-05-01 10:00:00`, .NET's `2018-06-17T11:55:01.8164737`),
 * taken as UTC. Up to nine fractional digits are read; the store keeps six. Undefined when the text is not such a
 * time, names a day or hour that does not exist, or falls outside the protobuf Timestamp range.
 */
export function parseDateTime(text: string, options: { zoneRequired?: boolean } = {}): Timestamp | undefined {
  const m = DATE_TIME.exec(text);
  if (!m || (options.zoneRequired && !m[8])) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const midnight = utcMidnight(year, month, day);
  if (midnight === undefined || hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetSeconds = 0;
  const zone = m[8];
  if (zone && zone !== "Z" && zone !== "z") {
    const hours = Number(zone.slice(1, 3));
    const minutes = Number(zone.slice(4, 6));
    if (hours > 23 || minutes > 59) return undefined;
    offsetSeconds = (zone[0] === "-" ? -1 : 1) * (hours * 3600 + minutes * 60);
  }
  const seconds = midnight + BigInt(hour * 3600 + minute * 60 + second - offsetSeconds);
  if (seconds < MIN_SECONDS || seconds > MAX_SECONDS) return undefined;
  const nanos = Number((m[7] ?? "").padEnd(9, "0"));
  return create(TimestampSchema, { seconds, nanos });
}

/** Seconds since the epoch at the start of a UTC day, or undefined when the day does not exist. */
export function utcMidnight(year: number, month: number, day: number): bigint | undefined {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  // setUTCFullYear, unlike Date.UTC, does not read years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return BigInt(date.getTime() / 1000);
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days in a month (1-12) of the proleptic Gregorian calendar. */
function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : (MONTH_DAYS[month - 1] ?? 0);
}
