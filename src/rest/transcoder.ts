import type http from "node:http";
import {
  createRegistry,
  type DescMessage,
  type DescMethod,
  fromJsonString,
  type JsonObject,
  type JsonValue,
  type JsonWriteOptions,
  toJsonString,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextKey,
  type ContextValues,
  createContextValues,
} from "@connectrpc/connect";
import {
  createAsyncIterable,
  encodeEnvelope,
  pipe,
  readAllBytes,
  transformSplitEnvelope,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeFromHttpStatus,
  endStreamFlag,
  endStreamFromJson,
  errorFromJsonBytes,
} from "@connectrpc/connect/protocol-connect";
import { universalRequestFromNodeRequest } from "@connectrpc/connect-node";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  file_google_rpc_error_details,
} from "../../gen/google/rpc/error_details_pb.js";
import { type Binding, buildRouteTable } from "./bindings.js";
import { renameFields, restFieldPath } from "./field-paths.js";
import { forwardedHeaders, returnedHeaders } from "./forwarded-headers.js";
import { ClientGoneError, type NodeRequest, type NodeResponse, readBody, send, write } from "./http-io.js";
import { jsonBodyProblem } from "./json-body.js";
import { firstJsonFieldFault } from "./json-fields.js";
import { assembleRequest, decodeSegment } from "./request-message.js";
import { isRpcProtocolRequest, rejectUnknownProcedure } from "./rpc-protocol.js";
import { RestError, RestReason, restErrors, statusJson } from "./status.js";

export interface RestTranscoderOptions {
  /** Its handlers serve the REST routes, so REST calls pass the same interceptors, limits and deadlines as RPCs. */
  router: Pick<ConnectRouter, "handlers">;
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
  authenticate?: (req: NodeRequest, rpc: DescMethod, pathValue: (field: string) => string | undefined) => Promise<void>;
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
  const { table, bindings } = buildRouteTable(options.router.handlers);
  const fail = restErrors(options.errorDomain);
  const registry = createRegistry(
    file_google_rpc_error_details,
    ...new Set(options.router.handlers.map((h) => h.service.file)),
    ...(options.detailTypes ?? []),
  );
  const heartbeatMs = options.sseHeartbeatMs ?? 15_000;
  const decode = (segment: string) => decodeSegment(segment, fail);

  const respondError = (res: NodeResponse, error: RestError, rpcHeaders: Headers | undefined) => {
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
      // Only HTTP/1.0 may omit it; the inner call needs an absolute URL.
      throw fail(Code.InvalidArgument, RestReason.InvalidHeader, "a Host header is required", {
        metadata: { header: "host" },
      });
    }
    const contextValues = options.contextValues?.(req) ?? createContextValues();
    if (sse && ticket !== undefined) contextValues.set(sse.ticketKey, ticket);
    const uReq = universalRequestFromNodeRequest(req, res, null, contextValues);
    const json = Buffer.from(JSON.stringify(message));
    const inner: UniversalServerRequest = {
      ...uReq,
      method: "POST",
      url: new URL(binding.handler.requestPath, uReq.url).toString(),
      header: forwardedHeaders(uReq.header, streaming ? "application/connect+json" : "application/json", fail),
      body: createAsyncIterable([streaming ? encodeEnvelope(0, json) : json]),
    };
    const uRes = await binding.handler(inner);
    if (streaming) await sendStream(req, res, binding, uRes, callerError);
    else await sendUnary(res, binding, uRes, callerError);
  }

  async function readJsonBody(req: NodeRequest, binding: Binding): Promise<JsonValue | undefined> {
    const bytes = await readBody(req, options.maxBodyBytes);
    if (bytes === undefined) {
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

  async function sendUnary(res: NodeResponse, binding: Binding, uRes: UniversalServerResponse, named: CallerError) {
    let bytes = uRes.body ? await readAllBytes(uRes.body, Number.MAX_SAFE_INTEGER) : new Uint8Array(0);
    if (uRes.status !== 200) {
      respondError(res, new RestError(named(rpcError(uRes.status, bytes)), uRes.status), uRes.header);
      return;
    }
    const writeOptions = options.responseJson?.get(binding.rpc.parent.typeName);
    if (writeOptions) {
      const output = fromJsonString(binding.rpc.output, Buffer.from(bytes).toString("utf8"), { registry });
      bytes = Buffer.from(toJsonString(binding.rpc.output, output, { ...writeOptions, registry }));
    }
    const body = binding.response ? responseField(bytes, binding) : bytes;
    send(res, 200, returnedHeaders(uRes.header, JSON_CONTENT_TYPE), body);
  }

  async function sendStream(
    req: NodeRequest,
    res: NodeResponse,
    binding: Binding,
    uRes: UniversalServerResponse,
    named: CallerError,
  ) {
    if (uRes.status !== 200 || !uRes.body) {
      const bytes = uRes.body ? await readAllBytes(uRes.body, Number.MAX_SAFE_INTEGER) : new Uint8Array(0);
      respondError(res, new RestError(named(rpcError(uRes.status, bytes)), uRes.status), uRes.header);
      return;
    }
    const sse = isEventStream(req);
    const eventId = sse ? options.sse?.eventId.split(".") : undefined;
    const frames = pipe(uRes.body, transformSplitEnvelope(Number.MAX_SAFE_INTEGER))[Symbol.asyncIterator]();
    let heartbeat: NodeJS.Timeout | undefined;
    try {
      let frame = await frames.next();
      // An RPC failing before its first message gets a real HTTP status rather than a 200 stream holding an error.
      if (!frame.done && frame.value.flags & endStreamFlag) {
        const { error } = endStreamFromJson(frame.value.data);
        if (error) {
          respondError(res, new RestError(named(error)), uRes.header);
          return;
        }
      }
      (res as http.ServerResponse).writeHead(
        200,
        returnedHeaders(uRes.header, {
          "content-type": sse ? "text/event-stream" : "application/x-ndjson",
          "cache-control": "no-cache",
        }),
      );
      if (sse && heartbeatMs > 0) heartbeat = setInterval(() => void write(res, ": keep-alive\n\n"), heartbeatMs);
      for (; !frame.done; frame = await frames.next()) {
        const { flags, data } = frame.value;
        if (flags & endStreamFlag) {
          const { error } = endStreamFromJson(data);
          if (error) {
            const status = JSON.stringify(statusJson(named(error), registry));
            await write(res, sse ? `event: error\ndata: ${status}\n\n` : `{"error":${status}}\n`);
          }
          break;
        }
        // One message per line (NDJSON) or per data field (SSE): a JSON text must not span lines.
        const json = binding.response || data.includes(NEWLINE) ? responseField(data, binding) : data;
        const id = eventId ? sseId(data, eventId) : undefined;
        const ok = await write(
          res,
          sse ? Buffer.concat([id ?? EMPTY, DATA, json, BLANK_LINE]) : Buffer.concat([RESULT, json, END_RESULT]),
        );
        if (!ok) break;
      }
      res.end();
    } finally {
      clearInterval(heartbeat);
      await frames.return?.();
    }
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

  /** The response_body field of a JSON response (its default when the RPC left it unset), as compact JSON. */
  function responseField(bytes: Uint8Array, binding: Binding): Buffer {
    const message = JSON.parse(Buffer.from(bytes).toString("utf8")) as JsonObject;
    if (!binding.response) return Buffer.from(JSON.stringify(message));
    const { field, whenUnset } = binding.response;
    const value = message[field.jsonName] ?? message[field.name];
    return Buffer.from(value === undefined ? whenUnset : JSON.stringify(value));
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
function sseId(data: Uint8Array, path: string[]): Buffer | undefined {
  let value: unknown = JSON.parse(Buffer.from(data).toString("utf8"));
  for (const key of path) value = (value as Record<string, unknown> | undefined)?.[key];
  return typeof value === "string" || typeof value === "number" ? Buffer.from(`id: ${value}\n`) : undefined;
}

const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);
const RESULT = Buffer.from('{"result":');
const END_RESULT = Buffer.from("}\n");
const DATA = Buffer.from("data: ");
const BLANK_LINE = Buffer.from("\n\n");

/** The Connect error in a non-200 unary response; a bare HTTP status when the body is not one. */
function rpcError(status: number, bytes: Uint8Array): ConnectError {
  const fallback = new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status));
  try {
    return errorFromJsonBytes(bytes, undefined, fallback);
  } catch {
    return fallback;
  }
}
