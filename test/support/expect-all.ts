import { expect } from "vitest";

/**
 * Every item passes `check`, and there is at least one: `every()` over an empty list is true, so a query that found
 * nothing would otherwise pass. The failing items are shown.
 */
export function expectAll<T>(items: readonly T[], check: (item: T) => boolean, what = "items"): void {
  expect(items.length, `${what}: nothing to check`).toBeGreaterThan(0);
  expect(
    items.filter((item) => !check(item)),
    what,
  ).toEqual([]);
}
