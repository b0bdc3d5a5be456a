import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
} from "../../gen/health/v1/health_pb.js";

export interface HealthOptions {
  /** Fully-qualified names of the services whose health is reported, besides the server as a whole (""). */
  services: string[];
  /** Whether the database answers: every service needs it, so every one is SERVING or NOT_SERVING with it. */
  ready(): Promise<boolean>;
  /** Aborted when shutdown begins: from then on every service is NOT_SERVING and each Watch ends after saying so. */
  draining: AbortSignal;
  /** How often a Watch looks at the database again. */
  watchIntervalMs?: number;
}

/**
 * grpc.health.v1.Health (https://github.com/grpc/grpc/blob/master/doc/health-checking.md): the server ("") and each
 * of its services are SERVING while the database answers and shutdown has not begun. Unknown names are NOT_FOUND
 * for Check and SERVICE_UNKNOWN for Watch, as the protocol says.
 */
export function createHealthService(options: HealthOptions): ServiceImpl<typeof Health> {
  const known = new Set(["", ...options.services]);
  const intervalMs = options.watchIntervalMs ?? 5_000;

  async function status(service: string): Promise<Status> {
    if (!known.has(service)) return Status.SERVICE_UNKNOWN;
    if (options.draining.aborted) return Status.NOT_SERVING;
    return (await options.ready()) && !options.draining.aborted ? Status.SERVING : Status.NOT_SERVING;
  }

  const reply = (s: Status): HealthCheckResponse => create(HealthCheckResponseSchema, { status: s });

  return {
    async check(req: HealthCheckRequest) {
      const s = await status(req.service);
      if (s === Status.SERVICE_UNKNOWN) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return reply(s);
    },

    async list() {
      const statuses: Record<string, HealthCheckResponse> = {};
      for (const service of known) statuses[service] = reply(await status(service));
      return { statuses };
    },

    async *watch(req: HealthCheckRequest, ctx: HandlerContext) {
      let last: Status | undefined;
      for (;;) {
        const s = await status(req.service);
        if (s !== last) {
          last = s;
          yield reply(s);
        }
        // A draining server has said NOT_SERVING; ending the stream lets the connection close without waiting.
        if (options.draining.aborted || ctx.signal.aborted) return;
        await wake(intervalMs, [options.draining, ctx.signal]);
      }
    },
  };
}

/** Resolves after `ms`, or as soon as one of the signals aborts. */
function wake(ms: number, signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const signal of signals) signal.addEventListener("abort", done, { once: true });
  });
}
