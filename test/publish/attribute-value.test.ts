import { describe, expect, test } from "vitest";
import { parseAttributeValue } from "../../src/service/attribute-value.js";

describe("attribute values by template type", () => {
  test.each([
    ["0", 0],
    ["-17", -17],
    ["+17", 17],
    ["007", 7],
    ["9007199254740991", 9007199254740991],
    ["9007199254740992", "9007199254740992"],
    ["-9223372036854775808", "-9223372036854775808"],
    ["9223372036854775807", "9223372036854775807"],
  ])("integer %s", (raw, stored) => expect(parseAttributeValue("INTEGER", raw)).toBe(stored));

  test.each(["", " 1", "1 ", "1.0", "1e3", "0x10", "9223372036854775808", "-9223372036854775809", "--1", "١"])(
    "not an integer: %j",
    (raw) => expect(parseAttributeValue("INTEGER", raw)).toBeUndefined(),
  );

  test.each([
    ["1.5", 1.5],
    ["-0.25", -0.25],
    [".5", 0.5],
    ["5.", 5],
    ["1e3", 1000],
    ["2.5E-3", 0.0025],
    ["42", 42],
  ])("float %s", (raw, stored) => expect(parseAttributeValue("FLOAT", raw)).toBe(stored));

  test.each(["", "NaN", "Infinity", "1e400", "1,5", "0x1p3", ".", "e3", "1.5f"])("not a float: %j", (raw) =>
    expect(parseAttributeValue("FLOAT", raw)).toBeUndefined(),
  );

  test.each([
    ["true", true],
    ["FALSE", false],
    ["True", true],
  ])("boolean %s", (raw, stored) => expect(parseAttributeValue("BOOLEAN", raw)).toBe(stored));

  test.each(["", "yes", "1", "t", "true "])("not a boolean: %j", (raw) =>
    expect(parseAttributeValue("BOOLEAN", raw)).toBeUndefined(),
  );

  test.each([
    ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"],
    ["2026-01-02t03:04:05z", "2026-01-02T03:04:05Z"],
    ["2026-01-02 03:04:05Z", "2026-01-02T03:04:05Z"],
    ["2026-01-02T03:04:05.5+01:30", "2026-01-02T01:34:05.500Z"],
    ["2026-01-02T03:04:05.123456789-00:00", "2026-01-02T03:04:05.123456789Z"],
    ["2024-02-29T23:59:59-05:00", "2024-03-01T04:59:59Z"],
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"],
    ["0099-06-01T00:00:00Z", "0099-06-01T00:00:00Z"],
    ["9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"],
  ])("timestamp %s", (raw, stored) => expect(parseAttributeValue("TIMESTAMP", raw)).toBe(stored));

  test.each([
    "",
    "2026-01-02",
    "2026-01-02T03:04:05",
    "2026-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-01-02T24:00:00Z",
    "2026-01-02T03:60:00Z",
    "2026-01-02T03:04:60Z",
    "2026-01-02T03:04:05+24:00",
    "2026-01-02T03:04:05.Z",
    "2026-01-02T03:04:05.1234567890Z",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-00:01",
    "1767322800",
  ])("not a timestamp: %j", (raw) => expect(parseAttributeValue("TIMESTAMP", raw)).toBeUndefined());

  test("strings are kept as sent", () => {
    expect(parseAttributeValue("STRING", " any thing ")).toBe(" any thing ");
  });
});
