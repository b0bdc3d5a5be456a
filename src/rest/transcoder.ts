import type http from "node:http";
import {
  createRegistry,
  type DescMessage,
  type DescMethod,
  fromJson,
  type JsonObject,
  type JsonValue,
  type JsonWriteOptions,
  toJson,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextKey, type ContextValues, createContextValues } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  file_google_rpc_error_details,
} from "../../gen/google/rpc/error_details_pb.js";
import { readBody } from "../server/body.js";
import { type CallInit, type Invoker, unaryResponseHeaders } from "../server/invoker.js";
import { type Binding, buildRouteTable } from "./bindings.js";
import { renameFields, restFieldPath } from "./field-paths.js";
import { forwardedHeaders, returnedHeaders } from "./forwarded-headers.js";
import { ClientGoneError, type NodeRequest, type NodeResponse, send, write } from "./http-io.js";
import { jsonBodyProblem } from "./json-body.js";
import { firstJsonFieldFault } from "./json-fields.js";
import { assembleRequest, decodeSegment } from "./request-message.js";
import { isRpcProtocolRequest, rejectUnknownProcedure } from "./rpc-protocol.js";
import { RestError, RestReason, restErrors, statusJson } from "./status.js";

export interface RestTranscoderOptions {
  /** Runs the REST routes' RPCs, so REST calls pass the same interceptors, limits and deadlines as RPCs. */
  invoker: Pick<Invoker, "methods" | "unary" | "serverStream">;
  /** Largest REST request body; the same limit as the router's readMaxBytes. */
  maxBodyBytes: number;
  /** google.rpc.ErrorInfo domain of the errors the transcoder raises itself (unknown route, bad parameter, …). */
  errorDomain: string;
  /** Per-request context values, as the RPC server gives its calls (request id, …). */
  contextValues?: (req: NodeRequest) => ContextValues;
  /** Error detail types to render beyond google.rpc's and those declared in the services' own files. */
  detailTypes?: DescMessage[];
  /**
   * Server-Sent Events on server-streaming routes (`Accept: text/event-stream`), for a browser's EventSource: each
   * event's `id:` is the response field at `eventId` (dotted JSON names); a reconnect's `Last-Event-ID` sets the
   * request field `resumeField` (over the query's, since EventSource reconnects to the same URL); and the query
   * parameter `ticketParam` is taken out of the request into the call's context under `ticketKey`, standing in for
   * the Authorization header EventSource cannot send.
   */
  sse?: { eventId: string; resumeField: string; ticketParam: string; ticketKey: ContextKey<string | undefined> };
  /** An SSE comment is sent this often so proxies keep an idle stream open; 0 disables. Default 15 s. */
  sseHeartbeatMs?: number;
  /**
   * Services whose REST responses are written otherwise than Connect writes JSON (JSON names, unpopulated fields
   * left out), by service type name: a foreign API's clients may expect grpc-gateway's proto names, for example.
   * With `useProtoFieldName`, the field paths in the service's errors keep their proto names too.
   */
  responseJson?: ReadonlyMap<string, Partial<JsonWriteOptions>>;
  /**
   * Runs once a route matched, before the query or body is read: throw a ConnectError to refuse the request (the
   * service authenticates here, so an anonymous caller learns nothing from a route's tenant or body checks). Not run
   * for an SSE request carrying a stream ticket: the call itself redeems it (once). `pathValue` gives a
   * single-segment path variable by its field path, e.g. "tenant".
   */
  authenticate?: (
    req: NodeRequest,
    rpc: DescMethod,
    pathValue: (field: string) => string | undefined,
  ) => Promise<unknown>;
  /** Requests the transcoder refuses itself, before or instead of an RPC (unknown route, bad parameter, …). */
  onRefused?: (req: NodeRequest, httpStatus: number, error: ConnectError) => void;
  /** Failures of the transcoder itself (never a client error); the client gets a 500 Status without details. */
  onInternalError?: (error: unknown) => void;
}

export interface RestTranscoder {
  /** For the server's fallback: every request no RPC path matched. */
  handle(req: NodeRequest, res: NodeResponse): void;
  /** The served routes, e.g. "GET /v1/{name=shelves/*} → pkg.Service.Method", for logs and docs. */
  routes: string[];
}

const JSON_CONTENT_TYPE = { "content-type": "application/json" };
const CONTENT_TYPE = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Serves the google.api.http annotations of the router's services as JSON/HTTP. Routes are read from the generated
 * descriptors and compiled once; an annotation that cannot be served exactly, or two that collide, throw here.
 */
export function createRestTranscoder(options: RestTranscoderOptions): RestTranscoder {
  const { table, bindings } = buildRouteTable(options.invoker.methods);
  const fail = restErrors(options.errorDomain);
  const registry = createRegistry(
    file_google_rpc_error_details,
    ...new Set(options.invoker.methods.map((m) => m.parent.file)),
    ...(options.detailTypes ?? []),
  );
  const heartbeatMs = options.sseHeartbeatMs ?? 15_000;
  const decode = (segment: string) => decodeSegment(segment, fail);

  const respondError = (res: NodeResponse, error: RestError, rpcHeaders?: Headers) => {
    const headers = returnedHeaders(rpcHeaders, { ...error.headers, ...JSON_CONTENT_TYPE });
    send(res, error.httpStatus, headers, JSON.stringify(statusJson(error.error, registry)));
  };

  async function serve(req: NodeRequest, res: NodeResponse): Promise<void> {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? "" : url.slice(q + 1);
    const method = req.method ?? "GET";
    const match = path.startsWith("/") ? table.lookup(path, method, decode) : ({ kind: "not-found" } as const);
    if (match.kind === "not-found") {
      throw fail(Code.NotFound, RestReason.UnknownRoute, `no route for ${method} ${path}`);
    }
    if (match.kind === "wrong-method") {
      const allow = match.allowed.join(", ");
      throw fail(Code.Unimplemented, RestReason.MethodNotAllowed, `${method} is not allowed on ${path}`, {
        httpStatus: 405,
        headers: { allow },
        metadata: { allow },
      });
    }
    const binding = match.value;
    const streaming = binding.rpc.methodKind === "server_streaming";
    const sse = streaming && options.sse && isEventStream(req) ? options.sse : undefined;
    const [restQuery, ticket] = sse ? takeParam(query, sse.ticketParam) : [query, undefined];
    if (options.authenticate && ticket === undefined) {
      const pathValue = (field: string) => {
        const variable = binding.pathFields.find((p) => p.name === field && !p.variable.multiSegment)?.variable;
        return variable ? match.decoded[variable.start] : undefined;
      };
      try {
        await options.authenticate(req, binding.rpc, pathValue);
      } catch (error) {
        throw error instanceof ConnectError ? new RestError(error) : error;
      }
    }
    const body = await readJsonBody(req, binding);
    const queryNames = new Map<string, string>();
    const message = assembleRequest(
      { binding, raw: match.raw, decoded: match.decoded, query: restQuery, body, queryNames },
      fail,
    );
    if (sse) resumeFromLastEventId(req, binding, sse.resumeField, message);
    // The RPC names fields by their paths in its request message; the caller wrote a body and a query.
    const protoNames = options.responseJson?.get(binding.rpc.parent.typeName)?.useProtoFieldName === true;
    const callerPath = (path: string) => (protoNames ? path : restFieldPath(binding, queryNames, path));
    const callerError = (error: ConnectError) =>
      decodeFault(error, binding, message, callerPath) ?? renameFields(error, callerPath);
    if (req.headers.host === undefined && !("authority" in req)) {
      // Only HTTP/1.0 may omit it; REST refuses such a request.
      throw fail(Code.InvalidArgument, RestReason.InvalidHeader, "a Host header is required", {
        metadata: { header: "host" },
      });
    }
    const contextValues = options.contextValues?.(req) ?? createContextValues();
    if (sse && ticket !== undefined) contextValues.set(sse.ticketKey, ticket);
    const { header, timeoutMs } = forwardedHeaders(nodeHeaders(req), fail);
    // Aborted when the client goes away before the answer is complete.
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new ConnectError("the client closed the call", Code.Canceled));
    };
    res.once("close", onClose);
    const init: CallInit = {
      header,
      contextValues,
      controller: gone,
      timeoutMs,
      protocolName: "rest",
      url,
    };
    const input = async () => {
      try {
        return fromJson(binding.rpc.input, message);
      } catch (error) {
        throw ConnectError.from(error, Code.InvalidArgument);
      }
    };
    try {
      if (streaming) {
        await sendStream(
          req,
          res,
          binding,
          options.invoker.serverStream(binding.rpc as never, input, init),
          callerError,
        );
      } else {
        await sendUnary(res, binding, await options.invoker.unary(binding.rpc as never, input, init), callerError);
      }
    } finally {
      res.off("close", onClose);
    }
  }

  async function readJsonBody(req: NodeRequest, binding: Binding): Promise<JsonValue | undefined> {
    const bytes = await readBody(req, options.maxBodyBytes);
    if (bytes === "aborted") throw new ClientGoneError("the client closed the request before sending its body");
    if (bytes === "too-large") {
      // The rest of the body is never read, so an HTTP/1 connection cannot carry another request.
      const headers: Record<string, string> = req.httpVersionMajor === 1 ? { connection: "close" } : {};
      throw fail(
        Code.ResourceExhausted,
        RestReason.BodyTooLarge,
        `the request body exceeds ${options.maxBodyBytes} bytes`,
        {
          httpStatus: 413,
          headers,
        },
      );
    }
    if (bytes.length === 0) return undefined;
    if (binding.body.kind === "none") {
      throw fail(
        Code.InvalidArgument,
        RestReason.MalformedBody,
        `${binding.httpMethod} ${binding.template.source} takes no request body`,
      );
    }
    const contentType = req.headers["content-type"] ?? "";
    const encoding = req.headers["content-encoding"];
    if (!CONTENT_TYPE.test(contentType) || (encoding !== undefined && encoding !== "identity")) {
      throw fail(
        Code.InvalidArgument,
        RestReason.UnsupportedMediaType,
        `the request body must be uncompressed application/json, not ${contentType || "untyped"}${encoding ? ` (${encoding})` : ""}`,
        { httpStatus: 415 },
      );
    }
    let body: JsonValue;
    try {
      body = JSON.parse(utf8.decode(bytes)) as JsonValue;
    } catch (error) {
      throw fail(
        Code.InvalidArgument,
        RestReason.MalformedBody,
        `the request body is not valid JSON: ${(error as Error).message}`,
      );
    }
    const problem = jsonBodyProblem(body);
    if (problem) throw fail(Code.InvalidArgument, RestReason.MalformedBody, `the request body ${problem}`);
    return body;
  }

  type CallerError = (error: ConnectError) => ConnectError;

  /**
   * A refusal of the request's JSON by the decoder, which names the field's type but not where it sits, as the field
   * at fault by the path the caller knows it by (`logs[2].context.key`); undefined for any other error: only an
   * INVALID_ARGUMENT without a BadRequest can be the decoder's, and only a request holding a field that does not
   * decode can have been refused by it.
   */
  function decodeFault(
    error: ConnectError,
    binding: Binding,
    message: JsonObject,
    callerPath: (path: string) => string,
  ): ConnectError | undefined {
    if (error.code !== Code.InvalidArgument || error.findDetails(BadRequestSchema).length > 0) return undefined;
    const fault = firstJsonFieldFault(binding.rpc.input, message, registry);
    if (!fault) return undefined;
    const field = callerPath(fault.field);
    const reason = error.findDetails(ErrorInfoSchema)[0]?.reason ?? RestReason.InvalidField;
    return fail(Code.InvalidArgument, reason, `${field}: ${fault.description}`, { field, metadata: { field } }).error;
  }

  async function sendUnary(res: NodeResponse, binding: Binding, outcome: Outcome, named: CallerError) {
    const headers = unaryResponseHeaders(outcome);
    if (outcome.error) {
      respondError(res, new RestError(named(outcome.error)), headers);
      return;
    }
    const json = toJson(binding.rpc.output, outcome.message, writeOptionsOf(binding));
    send(res, 200, returnedHeaders(headers, JSON_CONTENT_TYPE), responseJson(json, binding));
  }

  async function sendStream(
    req: NodeRequest,
    res: NodeResponse,
    binding: Binding,
    call: ServerStream,
    named: CallerError,
  ) {
    const sse = isEventStream(req);
    const eventId = sse ? options.sse?.eventId.split(".") : undefined;
    const writeOptions = writeOptionsOf(binding);
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      let next: IteratorResult<unknown>;
      try {
        next = await call.messages.next();
      } catch (error) {
        // An RPC failing before its first message gets a real HTTP status rather than a 200 stream holding an error.
        respondError(res, new RestError(named(error as ConnectError)), call.header);
        return;
      }
      (res as http.ServerResponse).writeHead(
        200,
        returnedHeaders(call.header, {
          "content-type": sse ? "text/event-stream" : "application/x-ndjson",
          "cache-control": "no-cache",
        }),
      );
      if (sse && heartbeatMs > 0) heartbeat = setInterval(() => void write(res, ": keep-alive\n\n"), heartbeatMs);
      while (!next.done) {
        const json = toJson(binding.rpc.output, next.value as never, writeOptions);
        // One message per line (NDJSON) or per data field (SSE): JSON.stringify writes no newline.
        const body = responseJson(json, binding);
        const id = eventId ? sseId(json, eventId) : undefined;
        const ok = await write(res, sse ? `${id ?? ""}data: ${body}\n\n` : `{"result":${body}}\n`);
        if (!ok) break;
        try {
          next = await call.messages.next();
        } catch (error) {
          const status = JSON.stringify(statusJson(named(error as ConnectError), registry));
          await write(res, sse ? `event: error\ndata: ${status}\n\n` : `{"error":${status}}\n`);
          break;
        }
      }
      res.end();
    } finally {
      clearInterval(heartbeat);
      call.close();
    }
  }

  function writeOptionsOf(binding: Binding): Partial<JsonWriteOptions> {
    return { ...options.responseJson?.get(binding.rpc.parent.typeName), registry };
  }

  /** A reconnecting EventSource's Last-Event-ID (the last `id:` it saw) as the request field the stream resumes after. */
  function resumeFromLastEventId(req: NodeRequest, binding: Binding, field: string, message: JsonObject) {
    const last = req.headers["last-event-id"];
    if (typeof last !== "string" || last === "" || !binding.rpc.input.fields.some((f) => f.jsonName === field)) return;
    if (!/^\d{1,15}$/.test(last)) {
      throw fail(
        Code.InvalidArgument,
        RestReason.InvalidHeader,
        `Last-Event-ID must be an event id this stream sent, not "${last}"`,
        {
          metadata: { header: "last-event-id" },
        },
      );
    }
    message[field] = last;
  }

  /** The response, or its response_body field (its default when the RPC left it unset), as compact JSON. */
  function responseJson(json: JsonValue, binding: Binding): string {
    if (!binding.response) return JSON.stringify(json);
    const { field, whenUnset } = binding.response;
    const message = json as JsonObject;
    const value = message[field.jsonName] ?? message[field.name];
    return value === undefined ? whenUnset : JSON.stringify(value);
  }

  return {
    routes: bindings.map((b) => `${b.httpMethod} ${b.template.source} → ${b.rpc.parent.typeName}.${b.rpc.name}`),
    handle(req, res) {
      if (isRpcProtocolRequest(req)) {
        const error = rejectUnknownProcedure(req, res);
        options.onRefused?.(req, 404, error);
        return;
      }
      serve(req, res).catch((error: unknown) => {
        if (error instanceof ClientGoneError) return;
        if (res.headersSent) {
          // Mid-stream: the status line is gone, so all that is left is to cut the response short.
          if (!(error instanceof RestError)) options.onInternalError?.(error);
          res.destroy();
          return;
        }
        if (error instanceof RestError) {
          respondError(res, error, undefined);
          options.onRefused?.(req, error.httpStatus, error.error);
          return;
        }
        options.onInternalError?.(error);
        respondError(res, new RestError(new ConnectError("internal error", Code.Internal)), undefined);
      });
    },
  };
}

function isEventStream(req: NodeRequest): boolean {
  return (req.headers.accept ?? "").includes("text/event-stream");
}

/** The query without the parameter `name`, and its value when it was given. */
function takeParam(query: string, name: string): [string, string | undefined] {
  let value: string | undefined;
  const rest = query.split("&").filter((pair) => {
    const eq = pair.indexOf("=");
    if ((eq === -1 ? pair : pair.slice(0, eq)) !== name) return true;
    value = eq === -1 ? "" : pair.slice(eq + 1);
    return false;
  });
  return [rest.join("&"), value];
}

/** An SSE `id:` line holding the message's field at `path`, when it has one. */
function sseId(json: JsonValue, path: string[]): string | undefined {
  let value: unknown = json;
  for (const key of path) value = (value as Record<string, unknown> | undefined)?.[key];
  return typeof value === "string" || typeof value === "number" ? `id: ${value}\n` : undefined;
}

/** A node request's headers as fetch Headers, without HTTP/2 pseudo-headers. */
function nodeHeaders(req: NodeRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith(":")) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  return headers;
}

type Outcome = Awaited<ReturnType<Invoker["unary"]>>;
type ServerStream = ReturnType<Invoker["serverStream"]>;
