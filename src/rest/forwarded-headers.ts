import { Code } from "@connectrpc/connect";
import { type MakeRestError, RestReason } from "./status.js";

// Hop-by-hop headers, and those describing the REST body or protocol, which the RPC does not see.
const notForwarded = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "expect",
  "content-length",
  "content-type",
  "content-encoding",
  "accept-encoding",
  "grpc-timeout",
  "x-server-timeout",
]);

const GRPC_TIMEOUT = /^([0-9]{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
const SECONDS = /^[0-9]{1,9}(\.[0-9]+)?$/;
const MILLIS = /^[0-9]{1,10}$/;

/**
 * The headers the RPC sees: the caller's (Authorization, request ids, custom metadata) minus hop-by-hop and body
 * headers and any `connect-*` header; and the call's deadline, the shortest of `grpc-timeout` (gRPC syntax),
 * `X-Server-Timeout` (seconds) and `connect-timeout-ms`.
 */
export function forwardedHeaders(
  incoming: Headers,
  fail: MakeRestError,
): { header: Headers; timeoutMs: number | undefined } {
  const header = new Headers();
  let timeoutMs: number | undefined;
  const deadline = (name: string, ms: number | undefined) => {
    if (ms === undefined) {
      throw fail(Code.InvalidArgument, RestReason.InvalidHeader, `header ${name}: not a valid timeout`, {
        metadata: { header: name },
      });
    }
    timeoutMs = timeoutMs === undefined ? ms : Math.min(timeoutMs, ms);
  };
  for (const [name, value] of incoming) {
    if (name === "grpc-timeout") {
      const m = GRPC_TIMEOUT.exec(value);
      deadline(name, m ? Math.ceil(Number(m[1]) * (GRPC_UNIT_MS[m[2] as string] as number)) : undefined);
    } else if (name === "x-server-timeout") {
      deadline(name, SECONDS.test(value) ? Math.ceil(Number(value) * 1000) : undefined);
    } else if (name === "connect-timeout-ms") {
      deadline(name, MILLIS.test(value) ? Number(value) : undefined);
    } else if (!notForwarded.has(name) && !name.startsWith("connect-")) {
      header.append(name, value);
    }
  }
  return { header, timeoutMs };
}

// Set by the transcoder, or meaningful only to a Connect client.
const notReturned = new Set([
  "content-type",
  "content-length",
  "content-encoding",
  "connect-content-encoding",
  "connect-accept-encoding",
  "accept-encoding",
]);

/** The RPC's response headers (x-request-id, error metadata, `trailer-*`) as a node header object for the REST reply. */
export function returnedHeaders(
  from: Headers | undefined,
  extra: Record<string, string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (from) {
    for (const [name, value] of from) {
      if (notReturned.has(name)) continue;
      out[name] = name === "set-cookie" ? from.getSetCookie() : value;
    }
  }
  return Object.assign(out, extra);
}
