import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { testSources, withoutComments, withoutTitles } from "../support/test-sources.js";

// docs/errors.md promises a reason for each failure; a promise no test checks can break unnoticed. This check fails
// when the document lists a reason that no test asserts.
//
// The rule for "asserted": somewhere in test/ (this file excluded), with comments removed, the reason appears as a
// complete string literal ("REASON", 'REASON' or `REASON`) that is not the title of a test/it/describe. A test that
// checks a reason names it as a literal value to compare with (`reason: "TENANT_EXISTS"` for expectError,
// `toBe("TENANT_EXISTS")`, a row of a case table); a mention in a comment, in prose inside a longer string, or in a
// test's title does not count. Reasons are upper-case identifiers that a test has no other use for, so a literal of
// one is, in practice, an expectation.

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The reasons docs/errors.md lists: its table's first column, and the REST transcoder's paragraph. */
function documentedReasons(markdown: string): string[] {
  const reasons = new Set<string>();
  for (const m of markdown.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)) reasons.add(m[1] as string);
  const paragraph = /The REST transcoder adds its own reasons[\s\S]*?\n\n/.exec(markdown)?.[0] ?? "";
  for (const m of paragraph.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) reasons.add(m[1] as string);
  return [...reasons];
}

test("the rule counts an asserted literal, and not a comment, a title or prose", () => {
  const asserted = (source: string) => /(["'`])SOME_REASON\1/.test(withoutTitles(withoutComments(source)));
  expect(asserted(`await expectError(call, { code: Code.NotFound, reason: "SOME_REASON" });`)).toBe(true);
  expect(asserted(`expect(info?.reason).toBe('SOME_REASON'); // "http://x"`)).toBe(true);
  expect(asserted(`// reason: "SOME_REASON"\nconst x = 1;`)).toBe(false);
  expect(asserted(`/* expect "SOME_REASON" */`)).toBe(false);
  expect(asserted(`test("answers \\"SOME_REASON\\" here", () => {});`)).toBe(false);
  expect(asserted(`it.each([1])("SOME_REASON", () => {});`)).toBe(false);
  expect(asserted(`const text = "see SOME_REASON in the docs";`)).toBe(false);
  expect(asserted(`const url = "http://a/b"; expect(r).toBe("SOME_REASON");`)).toBe(true);
  expect(asserted(`expect(log).toMatch(/"level":50/); expect(r).toBe("SOME_REASON");`)).toBe(true);
  expect(asserted(`const re = /"SOME_REASON"/;`)).toBe(false);
});

test("every reason docs/errors.md lists is asserted by a test", async () => {
  const doc = await readFile(path.join(repoRoot, "docs/errors.md"), "utf8");
  const reasons = documentedReasons(doc);
  // The table and the transcoder's paragraph: a parser that finds a handful has lost its way.
  expect(reasons.length).toBeGreaterThan(50);
  const sources = await Promise.all(
    (await testSources(path.join(repoRoot, "test"), fileURLToPath(import.meta.url))).map(async (file) =>
      withoutTitles(withoutComments(await readFile(file, "utf8"))),
    ),
  );
  const unasserted = reasons.filter(
    (reason) => !sources.some((source) => new RegExp(`(["'\`])${reason}\\1`).test(source)),
  );
  expect(unasserted).toEqual([]);
});
