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
 * microsToIso writes it (`2026-11-22T00:30:00.123456Z`).
 */
export function pgTimestampMicros(text: string): bigint {
  const ms = Date.parse(`${text.slice(0, 10)}T${text.slice(11, 19)}Z`);
  if (Number.isNaN(ms)) throw new Error(`unexpected timestamp: ${text}`);
  let fraction = "";
  if (text[19] === ".") {
    let end = 20;
    while (end < text.length && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
    fraction = text.slice(20, end);
  }
  return BigInt(ms) * 1000n + BigInt(fraction.padEnd(6, "0").slice(0, 6));
}

export function pgToTimestamp(text: string): Timestamp {
  return microsToTimestamp(pgTimestampMicros(text));
}
