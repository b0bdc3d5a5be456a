import { expect, test } from "vitest";
import { uuidv7 } from "../../src/store/uuid.js";

test("uuidv7: RFC 9562 layout, the millisecond in the first 48 bits, fresh random bits per id of one millisecond", () => {
  const layout = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  for (const ms of [0, 1, 1_764_000_000_123, 2 ** 48 - 2]) {
    const ids = [uuidv7(ms), uuidv7(ms), uuidv7(ms + 1), uuidv7(ms)];
    for (const id of ids) expect(id).toMatch(layout);
    expect(ids.map((id) => Number.parseInt(id.replace("-", "").slice(0, 12), 16))).toEqual([ms, ms, ms + 1, ms]);
    expect(new Set(ids).size).toBe(4);
  }
});
