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
  const ms = Date.parse(`${text.slice(0, 10)}T${text.slice(11, 19)}Z`);
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

export function pgTimestampMicros(text: string): bigint {
  const { ms, micros } = parsePg(text);
  return BigInt(ms) * 1000n + BigInt(micros);
}

/** Called for every timestamp of every listed row, so it stays in plain numbers until the seconds. */
export function pgToTimestamp(text: string): Timestamp {
  const { ms, micros } = parsePg(text);
  return create(TimestampSchema, { seconds: BigInt(ms / 1000), nanos: micros * 1000 });
}
