import type { JsonValue } from "@bufbuild/protobuf";

/** protobuf-es refuses JSON nested deeper than this, so no deeper body could ever decode. */
export const MAX_JSON_DEPTH = 100;

/**
 * What makes a parsed JSON body unusable before it is re-serialised for the RPC, or undefined: nesting past
 * `maxDepth` (JSON.parse accepts any depth, but JSON.stringify would overflow the stack), and numbers past double
 * range, which JSON.parse turns into Infinity and JSON.stringify into null, silently dropping the field. Walks
 * without recursion, so the check itself cannot overflow.
 */
export function jsonBodyProblem(value: JsonValue, maxDepth = MAX_JSON_DEPTH): string | undefined {
  const stack: [JsonValue, number, string][] = [[value, 0, ""]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [v, depth, path] = item;
    if (typeof v === "number" && !Number.isFinite(v)) {
      return `holds a number beyond the range of a double at ${path || "the top level"}`;
    }
    if (typeof v !== "object" || v === null) continue;
    if (depth >= maxDepth) return `nests deeper than ${maxDepth} levels at ${path}`;
    const children: [string, JsonValue][] = Array.isArray(v)
      ? v.map((child, i) => [`${path}[${i}]`, child])
      : Object.entries(v).map(([key, child]) => [path ? `${path}.${key}` : key, child]);
    for (const [childPath, child] of children) stack.push([child, depth + 1, childPath]);
  }
  return undefined;
}
