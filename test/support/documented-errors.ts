import { readFileSync } from "node:fs";
import { Code } from "@connectrpc/connect";

/** A reason's row in docs/errors.md: its code, and the HTTP status REST and Connect answer it with. */
export interface DocumentedError {
  code: Code;
  http: number;
}

/** The rows of docs/errors.md's table, by reason: `| \`REASON\` | CODE | HTTP … |`. */
export function documentedErrorRows(markdown: string): Map<string, DocumentedError> {
  const rows = new Map<string, DocumentedError>();
  for (const m of markdown.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| ([A-Z_]+) \| (\d{3})\b/gm)) {
    const [, reason, codeName, http] = m as unknown as [string, string, string, string];
    const name = codeName.toLowerCase().replace(/(^|_)([a-z])/g, (_, _s, c: string) => c.toUpperCase());
    const code = (Code as unknown as Record<string, Code | undefined>)[name];
    if (code === undefined) throw new Error(`docs/errors.md: ${reason} has the unknown code ${codeName}`);
    rows.set(reason, { code, http: Number(http) });
  }
  return rows;
}

const rows = documentedErrorRows(readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8"));

/** The documented code and HTTP status of a reason; a reason docs/errors.md's table does not list throws. */
export function documented(reason: string): DocumentedError {
  const row = rows.get(reason);
  if (!row) throw new Error(`docs/errors.md's table does not list the reason ${reason}`);
  return row;
}
