import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})?$/;

/**
 * A date and time as older APIs send it: RFC 3339 (`2024-05-01T10:00:00.5+02:00`), its space-separated form, and
 * the same without a zone (`2024-05-01 10:00:00`, or .NET's `2018-06-17T11:55:01.8164737`), which is taken as UTC.
 * Up to nine fractional digits are read; the store keeps six. Undefined when the text is not such a time or names
 * a day or hour that does not exist.
 */
export function parseDateTime(text: string): Timestamp | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
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
