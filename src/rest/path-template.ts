/**
 * The path template grammar of google/api/http.proto:
 *
 *     Template = "/" Segments [ Verb ] ;
 *     Segments = Segment { "/" Segment } ;
 *     Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;
 *     FieldPath = IDENT { "." IDENT } ;
 *     Verb     = ":" LITERAL ;
 *
 * `**` matches zero or more segments and must be the last segment. `{x}` is short for `{x=*}`.
 */

export type SegmentMatcher = { kind: "literal"; value: string } | { kind: "wildcard" } | { kind: "multi" };

export interface TemplateVariable {
  /** Proto field names from the request message down, e.g. ["event", "actor", "id"]. */
  fieldPath: string[];
  /** Index of the first segment the variable covers. */
  start: number;
  /** Index after the last segment it covers; undefined when it ends in `**` (the rest of the path). */
  end: number | undefined;
  /**
   * More than one segment (or `**`): its value keeps `%2F` encoded, per the spec, so that a `/` inside a segment stays
   * distinguishable from a separator. A single-segment variable decodes everything.
   */
  multiSegment: boolean;
}

export interface PathTemplate {
  source: string;
  segments: SegmentMatcher[];
  verb: string | undefined;
  variables: TemplateVariable[];
}

export class TemplateSyntaxError extends Error {}

// Characters a literal may not contain: they delimit the grammar or the URL.
const LITERAL = /^[^/{}*:=?#\s%]+/;
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;

export function parsePathTemplate(source: string): PathTemplate {
  let pos = 0;
  const segments: SegmentMatcher[] = [];
  const variables: TemplateVariable[] = [];
  function fail(what: string): never {
    throw new TemplateSyntaxError(`path template "${source}": ${what} at offset ${pos}`);
  }
  const rest = () => source.slice(pos);

  const parseSegment = (insideVariable: boolean): void => {
    if (rest().startsWith("**")) {
      segments.push({ kind: "multi" });
      pos += 2;
    } else if (rest().startsWith("*")) {
      segments.push({ kind: "wildcard" });
      pos += 1;
    } else if (source[pos] === "{") {
      if (insideVariable) fail("nested variable");
      parseVariable();
    } else {
      const literal = LITERAL.exec(rest())?.[0];
      if (!literal) fail("expected a literal, `*`, `**` or a variable");
      segments.push({ kind: "literal", value: literal });
      pos += literal.length;
    }
  };

  const parseSegments = (insideVariable: boolean): void => {
    parseSegment(insideVariable);
    while (source[pos] === "/") {
      pos += 1;
      parseSegment(insideVariable);
    }
  };

  const parseVariable = (): void => {
    pos += 1; // "{"
    const fieldPath: string[] = [];
    for (;;) {
      const ident = IDENT.exec(rest())?.[0];
      if (!ident) fail("expected a field name");
      fieldPath.push(ident);
      pos += ident.length;
      if (source[pos] !== ".") break;
      pos += 1;
    }
    const start = segments.length;
    if (source[pos] === "=") {
      pos += 1;
      parseSegments(true);
    } else {
      segments.push({ kind: "wildcard" });
    }
    if (source[pos] !== "}") fail("expected `}`");
    pos += 1;
    const covered = segments.slice(start);
    const endsInMulti = covered.at(-1)?.kind === "multi";
    variables.push({
      fieldPath,
      start,
      end: endsInMulti ? undefined : segments.length,
      multiSegment: endsInMulti || covered.length > 1,
    });
  };

  if (source[0] !== "/") fail("a template must start with `/`");
  pos = 1;
  parseSegments(false);
  let verb: string | undefined;
  if (source[pos] === ":") {
    pos += 1;
    verb = LITERAL.exec(rest())?.[0];
    if (!verb) fail("expected a verb after `:`");
    pos += verb.length;
  }
  if (pos !== source.length) fail("unexpected character");
  const multi = segments.findIndex((s) => s.kind === "multi");
  if (multi !== -1 && multi !== segments.length - 1) {
    pos = source.indexOf("**");
    fail("`**` must be the last segment");
  }
  const seen = new Set<string>();
  for (const v of variables) {
    const name = v.fieldPath.join(".");
    if (seen.has(name)) throw new TemplateSyntaxError(`path template "${source}": variable {${name}} appears twice`);
    seen.add(name);
  }
  return { source, segments, verb, variables };
}
