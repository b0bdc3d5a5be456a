import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createConnectRouter,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { ErrorInfoSchema, LocalizedMessageSchema } from "../../gen/google/rpc/error_details_pb.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createRestTranscoder, type RestTranscoderOptions } from "../../src/rest/transcoder.js";
import { createInvoker, registration } from "../../src/server/invoker.js";
import { type RunningServer, requestContextValues, startServer } from "../../src/server/server.js";
import { ItemSchema } from "../gen/resttest/v1/invalid_rules_pb.js";
import { type Echo, EchoService, type Params, RetryAdviceSchema } from "../gen/resttest/v1/rest_test_pb.js";

export const MAX_BODY_BYTES = 4096;

/** `x-delay-ms` asks a handler to take that long (per message when streaming), for deadline and cancel tests. */
async function delay(ctx: HandlerContext): Promise<void> {
  const ms = Number(ctx.requestHeader.get("x-delay-ms") ?? 0);
  if (ms === 0) return;
  // The signal's reason is the ConnectError (deadline exceeded, cancelled) the call should end with.
  await sleep(ms, undefined, { signal: ctx.signal }).catch(() => Promise.reject(ctx.signal.reason));
}

/** Echoes what the handler received: the request, the RPC, the Authorization header and the deadline. */
function echo(method: string) {
  return async (params: Params, ctx: HandlerContext) => {
    await delay(ctx);
    const timeout = ctx.timeoutMs();
    return {
      params,
      method,
      authorization: ctx.requestHeader.get("authorization") ?? "",
      timeoutMs: timeout === undefined ? undefined : BigInt(timeout),
      tags: params.tags,
    } satisfies Partial<Echo>;
  };
}

export const echoImpl: ServiceImpl<typeof EchoService> = {
  search: echo("Search"),
  getItem: echo("GetItem"),
  getBook: echo("GetBook"),
  getLeaf: echo("GetLeaf"),
  archive: echo("Archive"),
  update: echo("Update"),
  tag: echo("Tag"),
  delete: echo("Delete"),
  find: echo("Find"),
  getParams: echo("GetParams"),
  getTags: echo("GetTags"),
  unannotated: echo("Unannotated"),
  async *watch(params, ctx) {
    for (let index = 0; index < params.int32Value; index++) {
      yield { params: { id: params.id }, method: "Watch", index };
      await delay(ctx);
    }
    if (params.failCode) {
      throw new ConnectError("the stream failed", params.failCode, undefined, [
        { desc: ErrorInfoSchema, value: { reason: "STREAM_FAILED", domain: "resttest.v1" } },
      ]);
    }
  },
  fail(req) {
    throw new ConnectError(req.message, req.code as Code, undefined, [
      { desc: ErrorInfoSchema, value: { reason: "TEST_FAILURE", domain: "resttest.v1", metadata: { k: "v" } } },
      { desc: LocalizedMessageSchema, value: { locale: "en", message: "localized" } },
      { desc: RetryAdviceSchema, value: { attempts: 3 } },
      // Declared in a file no registered service uses: rendered only when passed as a detail type.
      { desc: ItemSchema, value: { id: "detail" } },
    ]);
  },
};

/** Refuses calls carrying `x-deny` and marks every response, to show REST calls pass the router's interceptors. */
const testInterceptor: Interceptor = (next) => async (req) => {
  if (req.header.has("x-deny")) throw new ConnectError("denied by interceptor", Code.PermissionDenied);
  const res = await next(req);
  res.header.set("x-intercepted", req.method.name);
  return res;
};

export interface EchoServer {
  url: string;
  port: number;
  router: ConnectRouter;
  internalErrors: unknown[];
  close(): Promise<void>;
}

/** The echo service on a real port, served as gRPC, gRPC-web, Connect and REST, as the app serves its own. */
export async function startEchoServer(
  options: { env?: Record<string, string>; rest?: Partial<RestTranscoderOptions> } = {},
): Promise<EchoServer> {
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    SHUTDOWN_GRACE_MS: "500",
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    ...options.env,
  });
  const logger = createLogger("warn", new Writable({ write: (_chunk, _encoding, callback) => callback() }));
  const shutdownController = new AbortController();
  const routerOptions = {
    interceptors: [testInterceptor],
    readMaxBytes: config.maxBodyBytes,
    shutdownSignal: shutdownController.signal,
  };
  const router = createConnectRouter({ ...routerOptions, jsonOptions: { ignoreUnknownFields: false } });
  router.service(EchoService, echoImpl);
  const internalErrors: unknown[] = [];
  const rest = createRestTranscoder({
    invoker: createInvoker([registration(EchoService, echoImpl)], routerOptions),
    maxBodyBytes: config.maxBodyBytes,
    errorDomain: "resttest.v1",
    contextValues: requestContextValues,
    onInternalError: (error) => internalErrors.push(error),
    ...options.rest,
  });
  const server: RunningServer = await startServer({
    config,
    logger,
    router,
    shutdownController,
    ready: async () => true,
    fallback: rest.handle,
  });
  return { url: server.url, port: server.port, router, internalErrors, close: () => server.close() };
}
