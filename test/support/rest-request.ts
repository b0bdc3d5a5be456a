import { type DescMethod, getOption, hasOption, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";

export interface RestRequest {
  method: string;
  /** Path and query, e.g. `/v1/tenants/acme/events?pageSize=1`. */
  path: string;
  /** JSON text, when the rule maps a body. */
  body?: string;
}

/**
 * The REST request a client would send for an RPC call, from the method's google.api.http rule: path variables
 * filled (percent-encoded) from the proto-JSON message, the body per the rule's `body`, and every other field as a
 * query parameter (nested fields dotted, repeated ones repeated). Undefined for an RPC without a rule.
 */
export function restRequest(rpc: DescMethod, message: JsonObject): RestRequest | undefined {
  if (!hasOption(rpc, http)) return undefined;
  const rule = getOption(rpc, http);
  const pattern = rule.pattern;
  const [method, template] =
    pattern.case === "custom"
      ? [pattern.value.kind, pattern.value.path]
      : [pattern.case?.toUpperCase() ?? "GET", String(pattern.value ?? "")];
  const rest: JsonObject = structuredClone(message);
  const path = template.replace(/\{([^}=]+)(?:=[^}]*)?\}/g, (_, name: string) => {
    const value = take(rest, name.split(".").map(jsonName));
    return encodeURIComponent(value === undefined || value === null ? "" : String(value));
  });
  let body: string | undefined;
  if (rule.body === "*") {
    body = JSON.stringify(rest);
    for (const key of Object.keys(rest)) delete rest[key];
  } else if (rule.body !== "") {
    const value = take(rest, [jsonName(rule.body)]);
    body = JSON.stringify(value ?? {});
  }
  const query = new URLSearchParams();
  flatten(rest, "", query);
  const q = query.toString();
  return { method: method.toUpperCase(), path: q ? `${path}?${q}` : path, body };
}

function jsonName(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Removes and returns the value at a path of JSON names. */
function take(object: JsonObject, path: string[]): JsonValue | undefined {
  let target: JsonValue | undefined = object;
  for (const key of path.slice(0, -1)) {
    if (typeof target !== "object" || target === null || Array.isArray(target)) return undefined;
    target = target[key];
  }
  if (typeof target !== "object" || target === null || Array.isArray(target)) return undefined;
  const last = path[path.length - 1] as string;
  const value = target[last];
  delete target[last];
  return value;
}

function flatten(value: JsonValue, prefix: string, out: URLSearchParams): void {
  if (Array.isArray(value)) {
    for (const item of value) flatten(item, prefix, out);
  } else if (typeof value === "object" && value !== null) {
    for (const [key, child] of Object.entries(value)) flatten(child, prefix ? `${prefix}.${key}` : key, out);
  } else if (prefix !== "") {
    out.append(prefix, String(value));
  }
}
