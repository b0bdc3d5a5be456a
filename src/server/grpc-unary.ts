import type http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { eventMessageDecoder } from "../codec/event-binary-reader.js";
import { eventMessageEncoder } from "../codec/event-binary-writer.js";
import { envelopeFlagsError } from "./envelope-flags.js";
import { callerError, envelopeMessage, grpcTimeout, type Invoker, setGrpcStatus } from "./invoker.js";

/**
 * Serves one unary gRPC call on its HTTP/2 stream, with node's stream API; the caller has checked the headers with
 * `takesGrpcFastPath`.
 */
export type GrpcUnaryHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  contextValues: ContextValues,
) => void;

/**
 * A stream's errors (a reset, a write after the client went away) end its call through 'close', as in node's
 * compatibility layer; unheard, an 'error' event would end the process.
 */
const ignore = () => {};

/**
 * A direct path for unary gRPC calls with uncompressed protobuf bodies, the bulk of machine-to-machine traffic: it
 * reads the one enveloped message, decodes it, has the invoker run the call (the same handler context, interceptors
 * and implementations as Connect's router), encodes the reply and writes the status as gRPC trailers, without the
 * chain of async iterables Connect's handler builds for every call. Everything else (gRPC-web, Connect, JSON,
 * compressed requests, streams, HTTP/1.1) takes Connect's path.
 */
export function createGrpcUnaryHandlers(
  invoker: Invoker,
  methods: Iterable<DescMethod>,
  options: { readMaxBytes?: number; writeMaxBytes?: number; maxTimeoutMs?: number; writeUnknownFields?: boolean },
): Map<string, GrpcUnaryHandler> {
  const readMaxBytes = options.readMaxBytes ?? 0xffffffff;
  const writeMaxBytes = options.writeMaxBytes ?? 0xffffffff;
  const maxTimeoutMs = options.maxTimeoutMs ?? Number.MAX_SAFE_INTEGER;
  const handlers = new Map<string, GrpcUnaryHandler>();
  for (const method of methods) {
    if (method.methodKind !== "unary") continue;
    const binary = invoker.binary(method);
    // Requests made of AuditEvents are read by a hand-made reader where it can (the same message), and by
    // protobuf-es otherwise, which also gives every parse error.
    const decode = eventMessageDecoder(method.input);
    const parse = decode ? (bytes: Uint8Array) => decode(bytes) ?? binary.parse(bytes) : binary.parse;
    // Responses made of AuditEvents are written by a hand-made encoder (the same bytes).
    const encode = options.writeUnknownFields === false ? undefined : eventMessageEncoder(method.output);
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
      : binary.serialize;

    handlers.set(`/${method.parent.typeName}/${method.name}`, (stream, headers, contextValues) => {
      stream.on("error", ignore);
      const header: Record<string, string> = {};
      for (const name in headers) {
        const value = headers[name];
        if (name.charCodeAt(0) !== 58 /* ":" */ && value !== undefined) {
          header[name] = Array.isArray(value) ? value.join(", ") : value;
        }
      }
      const timeout = grpcTimeout(header["grpc-timeout"], maxTimeoutMs);
      // Aborted when the client goes away before the answer is sent, as Connect's node adapter does.
      const request = new AbortController();
      const onClose = () => request.abort(new ConnectError("the client closed the call", Code.Canceled));
      stream.once("close", onClose);
      const read = async () => {
        const envelope = await readEnvelope(stream, readMaxBytes);
        if (timeout.error) throw timeout.error;
        if (envelope.flags > 1) throw envelopeFlagsError(envelope.flags);
        return parse(await envelopeMessage(envelope, readMaxBytes)) as never;
      };
      invoker
        .unary(method as never, read, {
          header,
          contextValues,
          controller: request,
          timeoutMs: timeout.error ? undefined : timeout.timeoutMs,
          protocolName: "grpc",
          // HTTP/2 allows Host in place of :authority, as node's compatibility layer reads it.
          url: `${headers[":scheme"]}://${headers[":authority"] ?? headers.host}${headers[":path"]}`,
          responseHeader: { "content-type": "application/grpc+proto" },
          responseTrailer: { "grpc-status": "0" },
        })
        .then((outcome) => {
          let frame: Uint8Array | undefined;
          let error = outcome.error;
          if (!error) {
            try {
              const bytes = serialize(outcome.message as never);
              frame = new Uint8Array(5 + bytes.byteLength);
              new DataView(frame.buffer).setUint32(1, bytes.byteLength);
              frame.set(bytes, 5);
            } catch (thrown) {
              error = callerError(thrown, method);
            }
          }
          stream.off("close", onClose);
          if (stream.destroyed || stream.closed || stream.headersSent) return;
          if (error) setGrpcStatus(outcome.trailer, error);
          const head: http2.OutgoingHttpHeaders = { ":status": 200 };
          outcome.header.forEach((value, name) => {
            head[name] = value;
          });
          const trailer: http2.OutgoingHttpHeaders = {};
          outcome.trailer.forEach((value, name) => {
            trailer[name] = value;
          });
          // The status goes in trailers after the message, or after no message for an error, as Connect sends it.
          stream.respond(head, { waitForTrailers: true });
          stream.once("wantTrailers", () => stream.sendTrailers(trailer));
          if (frame) stream.end(frame);
          else stream.end();
        });
    });
  }
  return handlers;
}

/**
 * Whether an HTTP/2 request can take the direct path: POST, gRPC with the protobuf codec, and an uncompressed body
 * (a client may still accept compressed responses; the direct path answers uncompressed, which gRPC allows).
 */
export function takesGrpcFastPath(headers: http2.IncomingHttpHeaders): boolean {
  if (headers[":method"] !== "POST") return false;
  const type = headers["content-type"];
  if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
  const encoding = headers["grpc-encoding"];
  return encoding === undefined || encoding === "identity";
}

/**
 * The request's one enveloped message. Reading stops, and the call is answered, as soon as the declared length is
 * over readMaxBytes or more bytes than declared arrive: nothing past one message (at most readMaxBytes) is ever
 * buffered, and the unread rest stays with the client, held by the paused stream's flow-control window.
 * No message, or bytes beyond the first, are refused with Connect's own codes and messages.
 */
function readEnvelope(
  stream: http2.ServerHttp2Stream,
  readMaxBytes: number,
): Promise<{ flags: number; data: Uint8Array }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let declared = -1;
    let failed = false;
    const fail = (error: ConnectError) => {
      failed = true;
      stream.off("data", onData);
      stream.pause();
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
    stream.on("data", onData);
    // A stream reset before its end never emits "end": settle, so the call's context is released.
    let ended = false;
    stream.once("close", () => {
      if (!ended) reject(new ConnectError("the client closed the call", Code.Canceled));
    });
    stream.once("end", () => {
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
