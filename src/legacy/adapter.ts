import type { Clock } from "../clock.js";
import type { Preauthenticate } from "../interceptors/auth.js";
import { logRefusal } from "../interceptors/request-log.js";
import { withRequestTraceContext } from "../interceptors/telemetry.js";
import type { Logger } from "../logger.js";
import type { InProcessClients } from "../server/in-process.js";
import type { NodeHandler } from "../server/listener.js";
import type { TenantDirectory } from "../service/tenant-directory.js";
import { type LegacyRequest, type LegacyResponse, send } from "./http.js";

/** What every legacy adapter may use: the service's own RPCs (through the interceptors) and tenant metadata. */
export interface LegacyDeps {
  clients: InProcessClients;
  tenants: TenantDirectory;
  /** Authenticates a request's credential for an RPC before the route reads anything else of it. */
  authenticate: Preauthenticate;
  maxBodyBytes: number;
  logger: Logger;
  /** "Now" for filters relative to the present (e.g. the last 10 days), injected so tests can move time. */
  clock: Clock;
  /** Most bytes of events one listing (Universal Controller's audit list) holds: LEGACY_LIST_MAX_BYTES. */
  listMaxBytes: number;
}

/** One older API, served on its own routes in its own wire format. */
export interface LegacyAdapter {
  name: string;
  /** Whether this adapter owns the path (it then answers every method on it, with its own errors). */
  owns(path: string): boolean;
  handle(req: LegacyRequest, res: LegacyResponse, url: URL): Promise<void>;
}

/** Routes a request to the legacy adapter that owns its path, or on to `next`. */
export function legacyHandler(adapters: LegacyAdapter[], logger: Logger, next: NodeHandler): NodeHandler {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const adapter = adapters.find((a) => a.owns(url.pathname));
    if (!adapter) {
      next(req, res);
      return;
    }
    // Each adapter answers in its own format; refusals it makes without a call (wrong method, content type, route)
    // would otherwise leave no line in the request log.
    res.once("finish", () => {
      if (res.statusCode >= 400) logRefusal(logger, req, { status: res.statusCode, adapter: adapter.name });
    });
    withRequestTraceContext(req.headers, () => adapter.handle(req, res, url)).catch((error) => {
      // Adapters render their own errors; reaching here is a bug in one, so answer plainly and log it.
      logger.error({ err: error, adapter: adapter.name }, "legacy adapter failed");
      if (!res.headersSent) send(res, 500, "text/plain", "internal error");
      else res.end();
    });
  };
}
