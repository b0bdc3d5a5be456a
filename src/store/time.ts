import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";

/**
 * PostgreSQL keeps microseconds; protobuf Timestamps carry nanoseconds. These helpers convert at microsecond
 * precision without passing through JS Date, which would cut to milliseconds.
 */

/** Microseconds since the epoch. */
export function timestampMicros(ts: Timestamp): bigint {
  return ts.seconds * 1_000_000n + BigInt(Math.floor(ts.nanos / 1000));
}

export function microsToTimestamp(micros: bigint): Timestamp {
  let seconds = micros / 1_000_000n;
  let rest = micros % 1_000_000n;
  if (rest < 0n) {
    rest += 1_000_000n;
    seconds -= 1n;
  }
  return create(TimestampSchema, { seconds, nanos: Number(rest) * 1000 });
}

/** `2026-11-22T00:30:00.123456Z`, the form PostgreSQL parses into timestamptz exactly. */
export function microsToIso(micros: bigint): string {
  let seconds = micros / 1_000_000n;
  let rest = Number(micros % 1_000_000n);
  if (rest < 0) {
    rest += 1_000_000;
    seconds -= 1n;
  }
  return `${isoSeconds(Number(seconds))}.${String(rest + 1_000_000).slice(1)}Z`;
}

/**
 * `YYYY-MM-DDThh:mm:ss` of whole seconds since the epoch (UTC): the first 19 characters of toISOString, by arithmetic
 * for the years 0000-9999 (every write formats two or three of these per event, and Date takes ten times as long);
 * Date's own text outside them.
 */
export function isoSeconds(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const time = seconds - days * 86_400;
  // The proleptic Gregorian date of a day since 1970-01-01 (H. Hinnant's civil_from_days).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  if (!(year >= 0 && year <= 9999)) return new Date(seconds * 1000).toISOString().slice(0, 19);
  const hours = Math.floor(time / 3600);
  const minutes = Math.floor((time % 3600) / 60);
  return `${String(year + 10_000).slice(1)}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T${TWO_DIGITS[hours]}:${TWO_DIGITS[minutes]}:${TWO_DIGITS[time % 60]}`;
}

const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i + 100).slice(1));

export function timestampToIso(ts: Timestamp): string {
  return microsToIso(timestampMicros(ts));
}

/**
 * Parses a UTC timestamp as PostgreSQL prints it with TimeZone=UTC (`2026-11-22 00:30:00.123456+00`) or as
 * microsToIso writes it (`2026-11-22T00:30:00.123456Z`): whole milliseconds from Date.parse, the fraction's
 * microseconds from its digits.
 */
function parsePg(text: string): { ms: number; micros: number } {
  const ms = civilMs(text) ?? Date.parse(`${text.slice(0, 10)}T${text.slice(11, 19)}Z`);
  if (Number.isNaN(ms)) throw new Error(`unexpected timestamp: ${text}`);
  let micros = 0;
  if (text[19] === ".") {
    for (let i = 20, scale = 100_000; i < 26; i++, scale /= 10) {
      const digit = text.charCodeAt(i) - 48;
      if (!(digit >= 0 && digit <= 9)) break;
      micros += digit * scale;
    }
  }
  return { ms, micros };
}

const DIGIT_AT = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];

function digit(text: string, i: number): number {
  return text.charCodeAt(i) - 48;
}

/**
 * The milliseconds of `YYYY-MM-DD?hh:mm:ss` (UTC) by arithmetic: Date.parse of a built string was the largest part
 * of turning a listed row into an event. Undefined for anything else, which Date.parse then reads (or refuses).
 */
function civilMs(text: string): number | undefined {
  for (const i of DIGIT_AT) if (!(digit(text, i) >= 0 && digit(text, i) <= 9)) return undefined;
  if (text[4] !== "-" || text[7] !== "-" || text[13] !== ":" || text[16] !== ":") return undefined;
  const year = digit(text, 0) * 1000 + digit(text, 1) * 100 + digit(text, 2) * 10 + digit(text, 3);
  const month = digit(text, 5) * 10 + digit(text, 6);
  const day = digit(text, 8) * 10 + digit(text, 9);
  const hours = digit(text, 11) * 10 + digit(text, 12);
  const seconds = hours * 3600 + (digit(text, 14) * 10 + digit(text, 15)) * 60 + digit(text, 17) * 10 + digit(text, 18);
  if (month < 1 || month > 12 || day < 1 || day > 31 || seconds >= 86_400) return undefined;
  // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return ((era * 146_097 + dayOfEra - 719_468) * 86_400 + seconds) * 1000;
}

export function pgTimestampMicros(text: string): bigint {
  const { ms, micros } = parsePg(text);
  return BigInt(ms) * 1000n + BigInt(micros);
}

/** Called for every timestamp of every listed row, so it stays in plain numbers until the seconds. */
export function pgToTimestamp(text: string): Timestamp {
  const { ms, micros } = parsePg(text);
  // What create(TimestampSchema, ...) returns, without its per-call work: up to four of these per listed row.
  return { $typeName: "google.protobuf.Timestamp", seconds: BigInt(ms / 1000), nanos: micros * 1000 };
}
