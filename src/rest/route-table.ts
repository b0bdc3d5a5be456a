import type { PathTemplate } from "./path-template.js";

interface Node<T> {
  literals: Map<string, Node<T>>;
  wildcard: Node<T> | undefined;
  /** `**`: consumes the rest of the path, so it only holds routes. */
  multi: Node<T> | undefined;
  /** By verb ("" for none), then by HTTP method. */
  routes: Map<string, Map<string, T>>;
}

export type RouteMatch<T> =
  /** `raw` and `decoded` are the path's segments, without the verb, for extracting variables. */
  | { kind: "found"; value: T; raw: string[]; decoded: string[] }
  | { kind: "wrong-method"; allowed: string[] }
  | { kind: "not-found" };

const newNode = <T>(): Node<T> => ({ literals: new Map(), wildcard: undefined, multi: undefined, routes: new Map() });

/**
 * A trie of path templates. Lookup prefers a literal segment over `*` over `**` and backtracks, so `/v1/items/x`
 * and `/v1/{name=**}` coexist; two templates of the same shape, verb and method are a conflict.
 * Segments reach lookup already percent-decoded.
 */
export class RouteTable<T> {
  private readonly root = newNode<T>();
  private readonly verbs = new Set<string>();

  /** Adds a route, unless one of the same shape, verb and method exists: then returns that one instead. */
  add(template: PathTemplate, method: string, value: T): T | undefined {
    let node = this.root;
    for (const segment of template.segments) {
      if (segment.kind === "literal") {
        const next = node.literals.get(segment.value) ?? newNode<T>();
        node.literals.set(segment.value, next);
        node = next;
      } else if (segment.kind === "wildcard") {
        node.wildcard ??= newNode();
        node = node.wildcard;
      } else {
        node.multi ??= newNode();
        node = node.multi;
      }
    }
    const verb = template.verb ?? "";
    const byMethod = node.routes.get(verb) ?? new Map<string, T>();
    node.routes.set(verb, byMethod);
    const existing = byMethod.get(method);
    if (existing !== undefined) return existing;
    byMethod.set(method, value);
    if (template.verb !== undefined) this.verbs.add(template.verb);
    return undefined;
  }

  /**
   * `rawPath` starts with "/" and has no query. A final `:verb` counts only when some template registered that verb,
   * so a colon inside an ordinary last segment (a resource id) still matches a variable.
   */
  lookup(rawPath: string, method: string, decode: (segment: string) => string): RouteMatch<T> {
    const raw = rawPath.slice(1).split("/");
    const last = raw.length - 1;
    const colon = (raw[last] as string).lastIndexOf(":");
    const attempts: Array<[string[], string]> = [];
    if (colon !== -1) {
      const verb = (raw[last] as string).slice(colon + 1);
      if (this.verbs.has(verb)) {
        const withoutVerb = raw.slice();
        withoutVerb[last] = (raw[last] as string).slice(0, colon);
        attempts.push([withoutVerb, verb]);
      }
    }
    attempts.push([raw, ""]);
    let allowed: Set<string> | undefined;
    for (const [segments, verb] of attempts) {
      const decoded = segments.map(decode);
      const value = find(this.root, decoded, 0, verb, method);
      if (value !== undefined) return { kind: "found", value, raw: segments, decoded };
      allowed = collectMethods(this.root, decoded, 0, verb, allowed);
    }
    return allowed ? { kind: "wrong-method", allowed: [...allowed].sort() } : { kind: "not-found" };
  }
}

function find<T>(node: Node<T>, segments: string[], i: number, verb: string, method: string): T | undefined {
  if (i === segments.length) {
    const here = node.routes.get(verb)?.get(method);
    if (here !== undefined) return here;
  } else {
    const segment = segments[i] as string;
    const literal = node.literals.get(segment);
    const viaLiteral = literal && find(literal, segments, i + 1, verb, method);
    if (viaLiteral !== undefined) return viaLiteral;
    // An empty segment (`/v1/items/`) is not a value for `*`.
    const viaWildcard =
      node.wildcard && segment !== "" ? find(node.wildcard, segments, i + 1, verb, method) : undefined;
    if (viaWildcard !== undefined) return viaWildcard;
  }
  return node.multi?.routes.get(verb)?.get(method);
}

/** The slow path, only for a request no route matched: which methods would have matched this path. */
function collectMethods<T>(
  node: Node<T>,
  segments: string[],
  i: number,
  verb: string,
  into: Set<string> | undefined,
): Set<string> | undefined {
  const add = (byMethod: Map<string, T> | undefined) => {
    if (!byMethod) return;
    into ??= new Set();
    for (const m of byMethod.keys()) into.add(m);
  };
  if (i === segments.length) {
    add(node.routes.get(verb));
  } else {
    const segment = segments[i] as string;
    const literal = node.literals.get(segment);
    if (literal) into = collectMethods(literal, segments, i + 1, verb, into);
    if (node.wildcard && segment !== "") into = collectMethods(node.wildcard, segments, i + 1, verb, into);
  }
  add(node.multi?.routes.get(verb));
  return into;
}
