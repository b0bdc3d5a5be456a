import type { DescMessage, DescMethod, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { Principal } from "../auth/principal.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { Invoker } from "../server/invoker.js";
import type { NodeHandler } from "../server/listener.js";
import type { TenantDirectory } from "../service/tenant-directory.js";
import { type LegacyRequest, type LegacyResponse, send } from "./http.js";

/**
 * One of the service's own RPCs, through the interceptors, with the caller's Authorization header as it came (or
 * none). Resolves to the response, or rejects with the RPC's ConnectError.
 */
export type LegacyCall = <I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  input: MessageInitShape<I>,
  authorization: string | undefined,
) => Promise<MessageShape<O>>;

/**
 * Authenticates a request's credential (its Authorization header) for an RPC, as the interceptor will, before the
 * route reads anything else of it: the caller, or undefined for a public RPC. `tenant` is the request's, for Basic
 * credentials without `tenant/`. Rejects with the interceptor's ConnectError.
 */
export type Preauthenticate = (
  req: { headers: { authorization?: string }; socket?: { remoteAddress?: string } | null },
  method: DescMethod,
  tenant: string,
) => Promise<Principal | undefined>;

/** What every legacy adapter may use: the service's own RPCs (through the interceptors) and tenant metadata. */
export interface LegacyDeps {
  call: LegacyCall;
  tenants: TenantDirectory;
  authenticate: Preauthenticate;
  maxBodyBytes: number;
  logger: Logger;
  /** "Now" for filters relative to the present (e.g. the last 10 days), injected so tests can move time. */
  clock: Clock;
  /** Most bytes of events one listing (Universal Controller's audit list) holds: LEGACY_LIST_MAX_BYTES. */
  listMaxBytes: number;
}

/** Calls through the invoker, each carrying the API's name as its route (metrics and traces tell the routes apart). */
export function legacyCall(invoker: Invoker, route: string): LegacyCall {
  return async (method, input, authorization) => {
    const outcome = await invoker.unary(method, input, {
      header: authorization ? { authorization } : {},
      route,
      protocolName: "in-process",
    });
    if (outcome.error) throw outcome.error;
    return outcome.message;
  };
}

/** One older API, served on its own routes in its own wire format. */
export interface LegacyAdapter {
  name: string;
  /** Whether this adapter owns the path (it then answers every method on it, with its own errors). */
  owns(path: string): boolean;
  handle(req: LegacyRequest, res: LegacyResponse, url: URL): Promise<void>;
}

export interface LegacyHandlerOptions {
  logger: Logger;
  /** Requests no adapter owns. */
  next: NodeHandler;
  /** Records an answer of 400 or more in the request log. */
  onRefused: (req: LegacyRequest, fields: { status: number; adapter: string }) => void;
  /** Runs an adapter's work in the trace context the request's headers carry. */
  inTraceContext: (headers: LegacyRequest["headers"], work: () => Promise<void>) => Promise<void>;
}

/** Routes a request to the legacy adapter that owns its path, or on to `next`. */
export function legacyHandler(adapters: LegacyAdapter[], options: LegacyHandlerOptions): NodeHandler {
  const { logger } = options;
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const adapter = adapters.find((a) => a.owns(url.pathname));
    if (!adapter) {
      options.next(req, res);
      return;
    }
    // Each adapter answers in its own format; refusals it makes without a call (wrong method, content type, route)
    // would otherwise leave no line in the request log.
    res.once("finish", () => {
      if (res.statusCode >= 400) options.onRefused(req, { status: res.statusCode, adapter: adapter.name });
    });
    options
      .inTraceContext(req.headers, () => adapter.handle(req, res, url))
      .catch((error) => {
        // Adapters render their own errors; reaching here is a bug in one, so answer plainly and log it.
        logger.error({ err: error, adapter: adapter.name }, "legacy adapter failed");
        if (!res.headersSent) send(res, 500, "text/plain", "internal error");
        else res.end();
      });
  };
}
