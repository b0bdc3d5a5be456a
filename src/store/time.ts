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
  const ts = microsToTimestamp(micros);
  const base = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  return `${base}.${String(ts.nanos / 1000).padStart(6, "0")}Z`;
}

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
