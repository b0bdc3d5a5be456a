import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { documentedErrorRows } from "../support/documented-errors.js";
import { testSources, withoutComments, withoutTitles } from "../support/test-sources.js";

// docs/legacy.md gives each legacy API a table of its answers: an HTTP status and what the body says (a PlanoAuth
// `status`, an Axonize or Audit Resource `code`, a Frontier reason, a Universal Controller sentence). A row no test
// produces can break unnoticed; this check fails naming it.
//
// The rule for "produced": once comments and test titles are removed, the row's status as a number literal and its
// answer as a whole string literal appear together in one test (from its `test(`/`it(` to the next), as in
// `expect([res.status, body.status]).toEqual([401, "session-expired"])`, or on one line of a case table outside any
// test (`[429, "TAIL_TOO_SLOW"]`). Apart, in a comment or only in a title, they do not count.
// Each answer a cell lists is a row of its own (`NO_ROLE`, `INSUFFICIENT_ROLE`); `{name}` and `…` in a documented
// sentence stand for any text. A cell that names no literal says which it means: "the reason" is any reason
// docs/errors.md answers with the row's status, "the UNAUTHENTICATED reason" any of that code's. Success rows that
// carry no answer of their own ("—", the listing itself) are what every other test of the API checks first.

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface DocumentedAnswer {
  api: string;
  status: number;
  /** The cell as the document writes it, to name the row. */
  cell: string;
  /** String literals any one of which, beside the status, produces the row; whole-literal patterns. */
  answers: RegExp[];
}

/**
 * `Invalid {field}. {why}.`, `… The user has been revoked.` or `The limit is N bytes.` as a pattern for a whole string
 * literal: `{name}`, `…` and `N` stand for any text.
 */
function answerPattern(text: string): RegExp {
  const parts = text.split(/\{[^}]*\}|…|\bN\b/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`, "s");
}

/** Every answer row of every legacy API's status tables (tables whose first column is `HTTP`). */
function documentedAnswers(legacy: string, errors: string): DocumentedAnswer[] {
  const reasons = documentedErrorRows(errors);
  const exactly = (names: string[]) => names.map((n) => new RegExp(`^${n}$`));
  const rows: DocumentedAnswer[] = [];
  for (const section of legacy.split(/^## /m).slice(1)) {
    const api = section.slice(0, section.indexOf("\n")).trim();
    let answerColumn = -1;
    for (const line of section.split("\n")) {
      const cells = line.startsWith("|")
        ? line
            .split("|")
            .slice(1, -1)
            .map((c) => c.trim())
        : [];
      if (cells[0] === "HTTP") {
        // Frontier's table has a code column and a reason column; the reason is the answer.
        answerColumn = cells.includes("reason") ? cells.indexOf("reason") : 1;
        continue;
      }
      if (answerColumn < 0 || !/^\d{3}$/.test(cells[0] ?? "")) {
        if (cells.length === 0) answerColumn = -1;
        continue;
      }
      const status = Number(cells[0]);
      const cell = cells[answerColumn] as string;
      // An example (`e.g. …`) is one answer of the row's pattern, not a row of its own.
      const literals = [...cell.replace(/\(e\.g\.[^)]*\)/g, "").matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
      const row = (answers: RegExp[]) => rows.push({ api, status, cell, answers });
      if (cell === "—" || (status < 300 && literals.every((l) => l.startsWith("application/")))) continue;
      if (cell === "the reason") {
        row(exactly([...reasons].filter(([, r]) => r.http === status).map(([name]) => name)));
      } else if (cell === "Publish's messages, verbatim (below)") {
        // The sentences the section lists after the table, each a row of its own.
        const list = /passed on verbatim[^:]*:([\s\S]*?)and the missing-required-attribute message/.exec(section)?.[1];
        const sentences = [...(list ?? "").matchAll(/`([^`]+\.)`/g)].map((m) => m[1] as string);
        if (sentences.length === 0) throw new Error(`docs/legacy.md, ${api}: Publish's messages are not listed`);
        for (const s of sentences) rows.push({ api, status, cell: s, answers: [answerPattern(s)] });
      } else if (cell === "the UNAUTHENTICATED reason") {
        row(exactly([...reasons].filter(([, r]) => r.http === 401).map(([name]) => name)));
      } else if (literals.length === 0) {
        throw new Error(`docs/legacy.md, ${api}: the ${status} row "${cell}" names no answer: say here what it means`);
      } else {
        // "`INTERNAL` or the reason": INTERNAL is the answer a test can provoke on purpose.
        for (const literal of literals) rows.push({ api, status, cell: literal, answers: [answerPattern(literal)] });
      }
    }
  }
  return rows;
}

/** The string literals of a line of source, without their quotes. */
function stringLiterals(line: string): string[] {
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`((?:[^`\\]|\\.)*)`/g)].map((m) =>
    (m[1] ?? m[2] ?? m[3] ?? "").replace(/\\(.)/g, "$1"),
  );
}

/** Whether a piece of source names the row: its status as a number literal and one of its answers as a string literal. */
function produces(piece: string, row: DocumentedAnswer): boolean {
  if (!new RegExp(`(^|[^\\w."'\`])${row.status}(?![\\w."'\`])`).test(piece)) return false;
  return stringLiterals(piece).some((literal) => row.answers.some((answer) => answer.test(literal)));
}

/** The pieces of a test file (comments and titles removed) a row may be produced in: each test, and each line. */
function pieces(source: string): string[] {
  const tests = source.split(/(?=\b(?:test|it)(?:\.\w+)*(?:\([^)]*\))?\(\s*""\s*,)/);
  return [...tests.filter((piece) => /^(test|it)\b/.test(piece)), ...source.split("\n")];
}

test("the rule counts a status and an answer asserted together, and not apart, in a comment or in a title", () => {
  const row: DocumentedAnswer = {
    api: "Example",
    status: 401,
    cell: "… The user has been revoked.",
    answers: [answerPattern("… The user has been revoked.")],
  };
  const asserted = (source: string) => pieces(withoutTitles(withoutComments(source))).some((p) => produces(p, row));
  const revoked = '"Invalid credentials. The user has been revoked."';
  expect(asserted(`expect([res.status, text]).toEqual([401, ${revoked}]);`)).toBe(true);
  expect(asserted(`[401, \`Invalid credentials. The user has been revoked.\`],`)).toBe(true);
  const apart = `expect(res.status).toBe(401);\nexpect(text).toBe(${revoked});`;
  expect(asserted(`test("revoked", async () => {\n${apart}\n});`)).toBe(true);
  expect(asserted(apart)).toBe(false);
  expect(
    asserted(`test("a", () => expect(res.status).toBe(401));\ntest("b", () => expect(text).toBe(${revoked}));`),
  ).toBe(false);
  expect(asserted(`expect([res.status, text]).toEqual([403, ${revoked}]);`)).toBe(false);
  expect(asserted(`expect([res.status, text]).toEqual([4010, ${revoked}]);`)).toBe(false);
  expect(asserted(`// expect([401, ${revoked}])`)).toBe(false);
  expect(asserted(`test("401 \\"Invalid credentials. The user has been revoked.\\"", () => {});`)).toBe(false);
  expect(asserted(`expect([res.status, text]).toEqual([401, "Invalid credentials."]);`)).toBe(false);
});

test("every answer row of docs/legacy.md's status tables is produced by a test", async () => {
  const [legacy, errors] = await Promise.all([
    readFile(path.join(repoRoot, "docs/legacy.md"), "utf8"),
    readFile(path.join(repoRoot, "docs/errors.md"), "utf8"),
  ]);
  const rows = documentedAnswers(legacy, errors);
  // Five APIs' tables: a parser that finds a handful has lost its way.
  expect(new Set(rows.map((r) => r.api)).size).toBe(5);
  expect(rows.length).toBeGreaterThan(60);
  const sources = await testSources(path.join(repoRoot, "test"), fileURLToPath(import.meta.url));
  const all = (
    await Promise.all(sources.map(async (file) => pieces(withoutTitles(withoutComments(await readFile(file, "utf8"))))))
  ).flat();
  const unproduced = rows
    .filter((row) => !all.some((piece) => produces(piece, row)))
    .map((row) => `${row.api}: ${row.status} ${row.cell}`);
  expect(unproduced).toEqual([]);
});
