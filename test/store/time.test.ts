import fc from "fast-check";
import { expect, test } from "vitest";
import { isoSeconds, microsToIso, microsToTimestamp, pgTimestampMicros, pgToTimestamp } from "../../src/store/time.js";

// 1970 to 9999, the range events may carry (docs/limits.md).
const micros = fc.bigInt({ min: 0n, max: 253_402_300_799_999_999n });

test("timestamps read back exactly from ISO and from PostgreSQL's text form", () => {
  fc.assert(
    fc.property(micros, (us) => {
      const iso = microsToIso(us);
      const pg = iso.replace("T", " ").replace("Z", "+00");
      expect(pgTimestampMicros(iso)).toBe(us);
      expect(pgTimestampMicros(pg)).toBe(us);
      expect(pgToTimestamp(pg)).toEqual(microsToTimestamp(us));
    }),
    { numRuns: 5000 },
  );
});

test("PostgreSQL's shorter forms and odd dates read as Date.parse reads them", () => {
  expect(pgTimestampMicros("2024-02-29 23:59:59+00")).toBe(BigInt(Date.parse("2024-02-29T23:59:59Z")) * 1000n);
  expect(pgTimestampMicros("2026-11-22 03:50:00.5+00")).toBe(
    BigInt(Date.parse("2026-11-22T03:50:00Z")) * 1000n + 500_000n,
  );
  expect(pgTimestampMicros("1970-01-01 00:00:00+00")).toBe(0n);
  expect(() => pgTimestampMicros("infinity")).toThrow(/unexpected timestamp/);
});

test("dates and times are written as Date's toISOString writes them, in and beyond the years 0000-9999", () => {
  const iso = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 19);
  // Date's whole range, the years written by arithmetic, and the days around each year's and century's turn.
  const turns = fc
    .tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: -2 * 86_400, max: 2 * 86_400 }))
    .map(([year, offset]) => Date.UTC(year, 0, 1) / 1000 + offset);
  const seconds = fc.oneof(fc.integer({ min: -8_640_000_000_000, max: 8_640_000_000_000 }), turns);
  fc.assert(
    fc.property(seconds, (s) => {
      expect(isoSeconds(s)).toBe(iso(s));
    }),
    { numRuns: 20_000 },
  );
  fc.assert(
    fc.property(micros, (us) => {
      const ms = Number(us / 1000n);
      expect(microsToIso(us)).toBe(
        `${new Date(ms).toISOString().slice(0, 19)}.${String(us % 1_000_000n).padStart(6, "0")}Z`,
      );
    }),
    { numRuns: 5000 },
  );
});
