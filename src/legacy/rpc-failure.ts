import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { reasonOf } from "../errors.js";
import type { LegacyResponse } from "./http.js";

/** What a legacy adapter needs from a failed in-process RPC to render it in its own API's format. */
export interface RpcFailure {
  code: Code;
  /** The google.rpc.ErrorInfo reason (the error-mapping interceptor gives every error one). */
  reason: string;
  message: string;
  violations: { field: string; description: string; reason: string }[];
}

export function rpcFailure(error: unknown): RpcFailure {
  const e = ConnectError.from(error);
  return {
    code: e.code,
    reason: reasonOf(e) ?? Code[e.code],
    message: e.rawMessage,
    violations: e
      .findDetails(BadRequestSchema)
      .flatMap((d) => d.fieldViolations.map((v) => ({ field: v.field, description: v.description, reason: v.reason }))),
  };
}

/**
 * The HTTP status the legacy APIs answer a failed RPC with, unless their document says otherwise: 401 with a Bearer
 * challenge, 403, 400, 409, 429, 503 with Retry-After, and 500 for the rest. The headers are set on `res`.
 */
export function failureStatus(failure: RpcFailure, res: LegacyResponse): number {
  switch (failure.code) {
    case Code.Unauthenticated:
      res.setHeader("www-authenticate", "Bearer");
      return 401;
    case Code.PermissionDenied:
      return 403;
    case Code.InvalidArgument:
      return 400;
    case Code.AlreadyExists:
      return 409;
    case Code.ResourceExhausted:
      return 429;
    case Code.Unavailable:
      res.setHeader("retry-after", "1");
      return 503;
    default:
      return 500;
  }
}

/**
 * A core field path (`event.target.name`, `event.actor.roles[2]`) in a legacy API's own words (`entityName`,
 * `roles[2]`): the longest mapped prefix is replaced. Unmapped paths are returned unchanged.
 */
export function legacyField(field: string, names: Readonly<Record<string, string>>): string {
  let best = "";
  for (const key of Object.keys(names)) {
    const matches = field === key || field.startsWith(`${key}.`) || field.startsWith(`${key}[`);
    if (matches && key.length > best.length) best = key;
  }
  return best === "" ? field : `${names[best]}${field.slice(best.length)}`;
}

/**
 * A violation's description with the core field names it mentions ("must not be before occurred_at") replaced by
 * the legacy ones, so the caller reads only names it sent.
 */
export function legacyDescription(description: string, names: Readonly<Record<string, string>>): string {
  let out = description;
  for (const [key, name] of Object.entries(names)) {
    const leaf = key.slice(key.lastIndexOf(".") + 1);
    if (leaf.includes("_")) out = out.replace(new RegExp(`\\b${leaf}\\b`, "g"), name);
  }
  return out;
}
