import type http2 from "node:http2";
import type { DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouterOptions,
  type ContextValues,
  createHandlerContext,
  createServiceImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  createMethodSerializationLookup,
  envelopeDecompress,
  invokeUnaryImplementation,
} from "@connectrpc/connect/protocol";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { eventMessageDecoder } from "../codec/event-binary-reader.js";
import { eventMessageEncoder } from "../codec/event-binary-writer.js";
import { asClientFault } from "../interceptors/client-faults.js";
import { envelopeFlagsError } from "./envelope-flags.js";

/** Serves one unary gRPC call; the caller has checked it with `takesGrpcFastPath`. */
export type GrpcUnaryHandler = (
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  contextValues: ContextValues,
) => void;

export interface ServiceRegistration {
  service: DescService;
  impl: Partial<ServiceImpl<DescService>>;
}

/** The reason ctx.signal carries once a call has completed: made once, not a DOMException with a stack per call. */
const completed = new ConnectError("the call has completed", Code.Canceled);

/**
 * A direct path for unary gRPC calls with uncompressed protobuf bodies, the bulk of machine-to-machine traffic.
 * Connect's own gRPC handler runs every call, unary or not, through a chain of async iterables (split envelopes,
 * decompress, parse, invoke, serialize, compress, join); on a unary call that plumbing, its abort signals and its
 * garbage cost several times the work of the call itself (docs/performance.md). This path reads the one message,
 * and from there uses Connect's own pieces: the same serialization limits, handler context, interceptors and
 * implementations (invokeUnaryImplementation, as Connect's unary handlers do), and the same trailer encoding of
 * errors. Everything else (gRPC-web, Connect, JSON, compressed requests, streams, HTTP/1.1) takes Connect's path.
 */
export function createGrpcUnaryHandlers(
  services: ServiceRegistration[],
  options: Pick<
    ConnectRouterOptions,
    "interceptors" | "readMaxBytes" | "writeMaxBytes" | "maxTimeoutMs" | "shutdownSignal" | "binaryOptions"
  >,
): Map<string, GrpcUnaryHandler> {
  const readMaxBytes = options.readMaxBytes ?? 0xffffffff;
  const writeMaxBytes = options.writeMaxBytes ?? 0xffffffff;
  const interceptors = options.interceptors ?? [];
  const handlers = new Map<string, GrpcUnaryHandler>();
  for (const { service, impl } of services) {
    const spec = createServiceImplSpec(service, impl);
    for (const method of service.methods) {
      const methodSpec = spec.methods[method.localName];
      if (method.methodKind !== "unary" || methodSpec?.kind !== "unary") continue;
      const serialization = createMethodSerializationLookup(method, options.binaryOptions, undefined, {
        readMaxBytes,
        writeMaxBytes,
      });
      const input = serialization.getI(true);
      const output = serialization.getO(true);
      // Requests made of AuditEvents are read by a hand-made reader where it can (the same message, several times
      // faster), and by protobuf-es otherwise, which also gives every parse error.
      const decode = eventMessageDecoder(method.input);
      const parse = decode ? (bytes: Uint8Array) => decode(bytes) ?? input.parse(bytes) : input.parse;
      // Responses made of AuditEvents are written by a hand-made encoder (the same bytes, several times faster).
      const encode =
        options.binaryOptions?.writeUnknownFields === false ? undefined : eventMessageEncoder(method.output);
      const serialize = encode
        ? (reply: Parameters<typeof encode>[0]) => {
            const bytes = encode(reply);
            if (bytes.byteLength > writeMaxBytes) {
              throw new ConnectError(
                `message size ${bytes.byteLength} is larger than configured writeMaxBytes ${writeMaxBytes}`,
                Code.ResourceExhausted,
              );
            }
            return bytes;
          }
        : output.serialize;
      const url = `/${service.typeName}/${method.name}`;

      handlers.set(url, (req, res, contextValues) => {
        const requestHeader: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) {
          if (name.charCodeAt(0) !== 58 /* ":" */ && value !== undefined) {
            requestHeader[name] = Array.isArray(value) ? value.join(", ") : value;
          }
        }
        const timeout = parseTimeout(
          requestHeader["grpc-timeout"] ?? null,
          options.maxTimeoutMs ?? Number.MAX_SAFE_INTEGER,
        );
        // Aborted when the client goes away before the answer is sent, as Connect's node adapter does.
        const request = new AbortController();
        const onClose = () => {
          if (!res.writableFinished) request.abort(new ConnectError("the client closed the call", Code.Canceled));
        };
        res.once("close", onClose);
        const context = createHandlerContext({
          ...methodSpec,
          service,
          requestMethod: "POST",
          protocolName: "grpc",
          timeoutMs: timeout.timeoutMs,
          shutdownSignal: options.shutdownSignal,
          requestSignal: request.signal,
          requestHeader,
          url: `${req.scheme}://${req.authority}${req.url}`,
          responseHeader: { "content-type": "application/grpc+proto" },
          responseTrailer: { "grpc-status": "0" },
          contextValues,
        });

        const finish = (body: Uint8Array | undefined, error: unknown) => {
          context.abort(completed);
          res.off("close", onClose);
          if (res.destroyed || res.headersSent) return;
          if (error !== undefined) {
            setTrailerStatus(
              context.responseTrailer,
              error instanceof ConnectError
                ? // Parse errors and missing or extra messages are the client's fault, as on Connect's own path.
                  (asClientFault(error) ?? error)
                : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
            );
          }
          const head: Record<string, string> = {};
          context.responseHeader.forEach((value, name) => {
            head[name] = value;
          });
          const trailer: Record<string, string> = {};
          context.responseTrailer.forEach((value, name) => {
            trailer[name] = value;
          });
          res.writeHead(200, head);
          res.addTrailers(trailer);
          if (body) res.end(body);
          else res.end();
        };

        readEnvelope(req, readMaxBytes)
          .then(async (envelope) => {
            if (timeout.error) throw timeout.error;
            if (envelope.flags > 1) throw envelopeFlagsError(envelope.flags);
            const message = parse((await envelopeDecompress(envelope, null, readMaxBytes)).data);
            const reply = await invokeUnaryImplementation(methodSpec, context, message, interceptors);
            const bytes = serialize(reply);
            const frame = new Uint8Array(5 + bytes.byteLength);
            new DataView(frame.buffer).setUint32(1, bytes.byteLength);
            frame.set(bytes, 5);
            finish(frame, undefined);
          })
          .catch((error: unknown) => finish(undefined, error));
      });
    }
  }
  return handlers;
}

/**
 * Whether a request can take the direct path: HTTP/2, POST, gRPC with the protobuf codec, and an uncompressed body
 * (a client may still accept compressed responses; the direct path answers uncompressed, which gRPC allows).
 */
export function takesGrpcFastPath(req: {
  httpVersionMajor: number;
  method?: string;
  headers: http2.IncomingHttpHeaders;
}) {
  if (req.httpVersionMajor !== 2 || req.method !== "POST") return false;
  const type = req.headers["content-type"];
  if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
  const encoding = req.headers["grpc-encoding"];
  return encoding === undefined || encoding === "identity";
}

/**
 * The request's one enveloped message. Reading stops, and the call is answered, as soon as the declared length is
 * over readMaxBytes or more bytes than declared arrive: nothing past one message (at most readMaxBytes) is ever
 * buffered, and the unread rest stays with the client (the server resets the stream once it has answered).
 * No message, or bytes beyond the first, are refused with Connect's own codes and messages.
 */
function readEnvelope(
  req: http2.Http2ServerRequest,
  readMaxBytes: number,
): Promise<{ flags: number; data: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let declared = -1;
    let failed = false;
    const fail = (error: ConnectError) => {
      failed = true;
      req.off("data", onData);
      req.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.byteLength;
      if (declared === -1 && received >= 5) {
        const head = chunks.length === 1 ? chunk : Buffer.concat(chunks);
        declared = head.readUInt32BE(1);
        if (declared > readMaxBytes) {
          fail(
            new ConnectError(
              `message size ${declared} is larger than configured readMaxBytes ${readMaxBytes}`,
              Code.ResourceExhausted,
            ),
          );
          return;
        }
      }
      if (declared !== -1 && received > 5 + declared) {
        fail(new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented));
      }
    };
    req.on("data", onData);
    req.once("error", (error) => reject(ConnectError.from(error, Code.Canceled)));
    // A stream reset before its end never emits "end": settle, so the call's context is released.
    let ended = false;
    req.once("close", () => {
      if (!ended) reject(new ConnectError("the client closed the call", Code.Canceled));
    });
    req.once("end", () => {
      ended = true;
      if (failed) return;
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (body.byteLength === 0) {
        reject(new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented));
      } else if (body.byteLength < 5 || body.byteLength < 5 + declared) {
        reject(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      } else {
        resolve({ flags: body[0] as number, data: body.subarray(5) });
      }
    });
  });
}
