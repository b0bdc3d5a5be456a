import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type http from "node:http";
import http2 from "node:http2";
import type net from "node:net";
import { Code, ConnectError, type ConnectRouter, type ContextValues, createContextValues } from "@connectrpc/connect";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { kClientAddress } from "../auth/principal.js";
import { type Config, ConfigError } from "../config.js";
import { kRequestId } from "../interceptors/context.js";
import { logRefusal } from "../interceptors/request-log.js";
import type { Logger } from "../logger.js";
import { createCors } from "./cors.js";
import { checkEnvelopeFlags, isEnveloped } from "./envelope-flags.js";
import { type GrpcUnaryHandler, takesGrpcFastPath } from "./grpc-unary.js";
import {
  closeUnreadBodies,
  createCleartextListener,
  type ListenerOptions,
  limitHttp2Clients,
  type NodeHandler,
  type StreamTaker,
  TIMEOUT_CHECK_MS,
  takeHttp2Streams,
} from "./listener.js";
import { negotiationRefusal, type RpcRefusal, sendRpcRefusal, unknownProcedure } from "./rpc-refusals.js";

export type { NodeHandler };

export interface ServerOptions {
  config: Pick<
    Config,
    | "port"
    | "host"
    | "tlsCert"
    | "tlsKey"
    | "requestTimeoutMs"
    | "shutdownGraceMs"
    | "corsOrigins"
    | "http2MaxConcurrentStreams"
  >;
  logger: Logger;
  /** Serves gRPC, gRPC-web and Connect at `/<package.Service>/<Method>`. */
  router: ConnectRouter;
  /** Unary gRPC calls with uncompressed protobuf bodies, by path: the direct path in grpc-unary.ts. */
  grpcUnary?: Map<string, GrpcUnaryHandler>;
  /** Whether the service can serve: backs /readyz. */
  ready: () => Promise<boolean>;
  /** What the deployment checks warned of at start: /readyz lists them for the life of the process. */
  warnings?: readonly string[];
  /** Requests no RPC path matches (REST and legacy routes); default 404. */
  fallback?: NodeHandler;
  /** Aborted when the grace period ends, cancelling calls still running. */
  shutdownController: AbortController;
  /** Serves GET /metrics on this port, open like /readyz; unset when METRICS_PORT gives it a port of its own. */
  metrics?: NodeHandler;
}

export interface RunningServer {
  port: number;
  /** `http://127.0.0.1:<port>` (https with TLS). */
  url: string;
  /** Stops accepting, lets in-flight calls finish within the grace period, then closes every connection. */
  close(): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The context of a call arriving at the port: its request id (the caller's x-request-id when well-formed), its peer. */
export function requestContextValues(req: {
  headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders;
  socket?: { remoteAddress?: string } | null;
}): ContextValues {
  const given = req.headers["x-request-id"];
  return createContextValues()
    .set(kRequestId, typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID())
    .set(kClientAddress, req.socket?.remoteAddress);
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config, logger } = options;
  const shutdown = options.shutdownController;
  let closing = false;
  const rpcs = new Map<string, ConnectRouter["handlers"][number]>(
    options.router.handlers.map((h) => [h.requestPath, h]),
  );
  // `/audit.v1.AuditService/` → its methods: a path under a served service is an RPC path even when no method matches.
  const servicesByPrefix = new Map(options.router.handlers.map((h) => [`/${h.service.typeName}/`, h.service.methods]));
  const fallback: NodeHandler = options.fallback ?? notFound;
  const cors = createCors(config.corsOrigins, logger);

  const refuse = (
    req: Parameters<NodeHandler>[0],
    res: Parameters<NodeHandler>[1],
    refusal: RpcRefusal,
    id: string,
  ) => {
    sendRpcRefusal(req, res, refusal, id);
    logRefusal(logger, req, { status: refusal.httpStatus, error: refusal.error, requestId: id });
  };

  const connect: NodeHandler = (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    const rpc = rpcs.get(path);
    if (!rpc) {
      const methods = servicesByPrefix.get(path.slice(0, path.lastIndexOf("/") + 1));
      if (methods) refuse(req, res, unknownProcedure(path, methods), requestContextValues(req).get(kRequestId));
      else fallback(req, res);
      return;
    }
    const contextValues = requestContextValues(req);
    const uReq = universalRequestFromNodeRequest(req, res, undefined, contextValues);
    if (isEnveloped(req.headers["content-type"]))
      uReq.body = checkEnvelopeFlags(uReq.body as AsyncIterable<Uint8Array>);
    rpc(uReq)
      .then((uRes) => {
        const refusal = negotiationRefusal(rpc.method, req, uRes);
        if (refusal) return refuse(req, res, refusal, contextValues.get(kRequestId));
        // Answered before the whole body arrived (it was over readMaxBytes): closeUnreadBodies closes the connection.
        return universalResponseToNodeResponse(uRes, res);
      })
      .catch((error) => {
        // The client went away mid-response; nothing is left to tell it.
        if (ConnectError.from(error).code !== Code.Aborted) {
          logger.warn({ err: error, requestId: contextValues.get(kRequestId) }, "response failed");
        }
      });
  };

  const timeouts: ListenerOptions = {
    // node requires headersTimeout <= requestTimeout.
    headersTimeoutMs: Math.min(10_000, config.requestTimeoutMs),
    requestTimeoutMs: config.requestTimeoutMs,
    maxHeaderBytes: 32 * 1024,
    maxConcurrentStreams: config.http2MaxConcurrentStreams,
  };

  const listener: NodeHandler = (req, res) => {
    closeUnreadBodies(req, res);
    // node's HTTP/2 server takes header lists well past the SETTINGS_MAX_HEADER_LIST_SIZE it announces (nghttp2
    // refuses only past 64 KiB); HTTP/1.1 refuses past the same limit itself.
    if (req.httpVersionMajor === 2 && headerListSize(req.rawHeaders) > timeouts.maxHeaderBytes) {
      headersTooLarge(req, res, timeouts.maxHeaderBytes);
      return;
    }
    const path = (req.url ?? "/").split("?", 1)[0];
    const health = path === "/healthz" || path === "/readyz";
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      plain(res, 200, { status: "ok" });
      return;
    }
    if (path === "/readyz" && (req.method === "GET" || req.method === "HEAD")) {
      if (closing) plain(res, 503, { status: "shutting down" });
      else {
        const warnings = options.warnings?.length ? { warnings: options.warnings } : {};
        options
          .ready()
          .then((ok) => plain(res, ok ? 200 : 503, { status: ok ? "ready" : "database unavailable", ...warnings }));
      }
      return;
    }
    if (path === "/metrics" && options.metrics) {
      options.metrics(req, res);
      return;
    }
    if (cors(req, res)) return;
    if (health) {
      res.setHeader("allow", "GET, HEAD");
      plain(res, 405, { error: `${req.method} is not allowed on ${path}; use GET` });
      logRefusal(logger, req, { status: 405 });
      return;
    }
    if (closing) {
      // HTTP/2 streams get GOAWAY from session.close(); connection headers are illegal there.
      if (req.httpVersionMajor === 1) res.setHeader("connection", "close");
      plain(res, 503, { error: "shutting down" });
      return;
    }
    connect(req, res);
  };

  /**
   * Unary gRPC calls the direct path serves get their HTTP/2 stream before node makes request and response objects
   * of it. The rest of an HTTP/2 port's requests, and these ones whenever the listener above would do more than
   * route them (shutting down, a header list over the limit, CORS for an Origin, an Expect), go to the listener.
   */
  const grpcUnary = options.grpcUnary;
  const takeGrpcUnary: StreamTaker | undefined =
    grpcUnary &&
    ((stream, headers, rawHeaders) => {
      if (closing || headers.origin !== undefined || headers.expect !== undefined) return false;
      if (!takesGrpcFastPath(headers)) return false;
      const path = headers[":path"] ?? "";
      const query = path.indexOf("?");
      const direct = grpcUnary.get(query === -1 ? path : path.slice(0, query));
      if (!direct || headerListSize(rawHeaders) > timeouts.maxHeaderBytes) return false;
      direct(stream, headers, requestContextValues({ headers, socket: stream.session?.socket }));
      return true;
    });

  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  let entry: net.Server;
  let h1: http.Server | undefined;
  if (config.tlsCert && config.tlsKey) {
    // TLS: ALPN picks h2 or http/1.1, so browsers and gRPC clients share the port without sniffing.
    const secure = http2.createSecureServer(
      {
        cert: readFileSync(config.tlsCert),
        key: readFileSync(config.tlsKey),
        allowHTTP1: true,
        settings: { maxConcurrentStreams: timeouts.maxConcurrentStreams },
      },
      listener,
    );
    if (takeGrpcUnary) takeHttp2Streams(secure, takeGrpcUnary);
    // HTTP/1.1 over TLS is served by this server, which tracks its timeouts itself once it listens (node has these
    // properties when allowHTTP1 is set; its types do not declare them).
    Object.assign(secure, {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    });
    limitHttp2Clients(secure, timeouts);
    secure.on("session", (s) => {
      sessions.add(s);
      s.once("close", () => sessions.delete(s));
    });
    entry = secure;
  } else {
    const servers = createCleartextListener(listener, timeouts, takeGrpcUnary);
    servers.h2.on("session", (s) => {
      sessions.add(s);
      s.once("close", () => sessions.delete(s));
    });
    h1 = servers.h1;
    entry = servers.tcp;
  }
  entry.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    entry.once("error", (error) => reject(listenFailure(error, config)));
    entry.listen(config.port, config.host, () => {
      entry.off("error", reject);
      resolve();
    });
  });
  const address = entry.address() as net.AddressInfo;
  const scheme = config.tlsCert ? "https" : "http";
  logger.info({ port: address.port, tls: Boolean(config.tlsCert) }, "listening");

  return {
    port: address.port,
    url: `${scheme}://127.0.0.1:${address.port}`,
    async close() {
      if (closing) return;
      closing = true;
      const stopped = new Promise<void>((resolve) => entry.close(() => resolve()));
      // Stops its timeout tracking; it never listened, so its own close callback would only report that.
      h1?.close(() => {});
      const drained = (async () => {
        while (sockets.size > 0) {
          // Every turn, not once: a connection accepted before the port closed may start its HTTP/2 session (or
          // finish its HTTP/1.1 request) only now, and would otherwise hold the drain for the whole grace period.
          for (const session of sessions) if (!session.closed) session.close();
          h1?.closeIdleConnections();
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      const grace = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), config.shutdownGraceMs).unref());
      if ((await Promise.race([drained, grace])) === "timeout") {
        logger.warn({ open: sockets.size }, "grace period over; cancelling remaining calls");
        shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
        await new Promise((r) => setTimeout(r, 100));
        for (const socket of sockets) socket.destroy();
      }
      await stopped;
    },
  };
}

/** A header list's size as HTTP/2 counts it (RFC 9113 §6.5.2): name and value octets plus 32 per field. */
function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (const field of rawHeaders) size += Buffer.byteLength(field) + 16;
  return size;
}

/** 431, or for gRPC (which reads only its own status) RESOURCE_EXHAUSTED as a trailers-only response. */
function headersTooLarge(req: Parameters<NodeHandler>[0], res: Parameters<NodeHandler>[1], limit: number): void {
  const message = `the request headers exceed ${limit} bytes`;
  const contentType = String(req.headers["content-type"] ?? "");
  if (/^application\/grpc/i.test(contentType)) {
    (res as http.ServerResponse).writeHead(200, {
      "content-type": contentType,
      "grpc-status": String(Code.ResourceExhausted),
      "grpc-message": encodeURIComponent(message),
    });
    res.end();
    return;
  }
  plain(res, 431, { error: message });
}

/** The answer for a path nothing serves. */
export const notFound: NodeHandler = (_req, res) => plain(res, 404, { error: "not found" });

function plain(res: http.ServerResponse | http2.Http2ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  (res as http.ServerResponse).writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** An address the settings name that cannot be listened on is a ConfigError naming PORT or HOST; else the error. */
function listenFailure(error: NodeJS.ErrnoException, config: Pick<Config, "port" | "host">): Error {
  const address = `${config.host}:${config.port}`;
  switch (error.code) {
    case "EADDRINUSE":
      return new ConfigError(
        "PORT",
        String(config.port),
        `${address} is in use: stop what listens there, or choose another PORT`,
      );
    case "EACCES":
      return new ConfigError(
        "PORT",
        String(config.port),
        `this user may not listen on ${address}: choose a PORT above 1023`,
      );
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new ConfigError(
        "HOST",
        config.host,
        `is not an address of this machine (${error.code}): use 0.0.0.0, 127.0.0.1 or one of its addresses`,
      );
    default:
      return error;
  }
}
