import { readdir } from "node:fs/promises";
import path from "node:path";

// Reading test sources for what they assert: the checks that tie a documented promise to a test
// (test/core/documented-reasons.test.ts, test/legacy/documented-answers.test.ts).

/**
 * TypeScript source without its comments. String literals (which may hold `//`) are kept as they are; regular
 * expression literals (which may hold quotes) become `/re/`, so neither is mistaken for the other.
 */
export function withoutComments(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    const next = source[i + 1];
    if (c === "/" && next !== "/" && next !== "*" && /(^|[(,=:[!&|?{};+\-*%<>~^]|\breturn)\s*$/.test(out)) {
      let inClass = false;
      i++;
      while (i < source.length && (source[i] !== "/" || inClass) && source[i] !== "\n") {
        if (source[i] === "\\") i++;
        else if (source[i] === "[") inClass = true;
        else if (source[i] === "]") inClass = false;
        i++;
      }
      i++;
      out += "/re/";
    } else if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? source.length : end + 2;
    } else if (c === '"' || c === "'" || c === "`") {
      const start = i;
      i++;
      while (i < source.length && source[i] !== c) i += source[i] === "\\" ? 2 : 1;
      i++;
      out += source.slice(start, i);
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The source with the titles of test(), it(), describe() (and their .each/.skip forms) blanked. */
export function withoutTitles(source: string): string {
  return source.replace(
    /\b(test|it|describe)(\.\w+)*(\([^)]*\))?\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`)/g,
    (match, _fn, _modifier, _each, title: string) => `${match.slice(0, match.length - title.length)}""`,
  );
}

/** The TypeScript files under `dir`, generated code aside, but `except` (the checking test itself). */
export async function testSources(dir: string, except: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      // Generated code is not a test.
      if (entry.name !== "gen") files.push(...(await testSources(full, except)));
    } else if (entry.name.endsWith(".ts") && full !== except) files.push(full);
  }
  return files;
}
