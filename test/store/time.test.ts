import fc from "fast-check";
import { expect, test } from "vitest";
import { microsToIso, microsToTimestamp, pgTimestampMicros, pgToTimestamp } from "../../src/store/time.js";

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
