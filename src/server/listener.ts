import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** What node's http and http2 servers hand a request listener. */
export type NodeHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ListenerOptions {
  /** Time to receive a request's headers; also a new connection's first bytes and an HTTP/2 session's first stream. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included. */
  requestTimeoutMs: number;
  maxHeaderBytes: number;
  /** Streams a client may have open at once on one HTTP/2 connection. */
  maxConcurrentStreams: number;
}

/** How often node's HTTP/1 server looks for requests past their timeouts (its default, 30 s, lets them run long). */
export const TIMEOUT_CHECK_MS = 1000;

/**
 * Serves an HTTP/2 stream with node's stream API, before node's compatibility layer makes request and response
 * objects of it; returns whether it took the stream. `rawHeaders` are the header list as received (names and values
 * alternating, pseudo-headers included).
 */
export type StreamTaker = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  rawHeaders: string[],
) => boolean;

/**
 * Offers each HTTP/2 stream to `take` first; the streams it leaves get request and response objects and reach the
 * server's request listener as before. node's compatibility layer is the 'stream' listener the server added with
 * its request listener: it is replaced by one that calls it for the streams `take` leaves, so a stream taken never
 * gets the objects (or their listeners on the stream) at all.
 */
export function takeHttp2Streams(server: http2.Http2Server | http2.Http2SecureServer, take: StreamTaker): void {
  const compat = server.listeners("stream");
  if (compat.length !== 1) throw new Error("takeHttp2Streams: expected only node's compatibility 'stream' listener");
  const requests = compat[0] as (...args: unknown[]) => void;
  server.removeAllListeners("stream");
  const onStream = (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
    rawHeaders: string[],
  ) => {
    if (!take(stream, headers, rawHeaders)) requests.call(server, stream, headers, flags, rawHeaders);
  };
  server.on("stream", onStream);
}

/**
 * Bounds what an HTTP/2 client can hold without sending a request: a session must open its first stream within
 * the headers timeout, and a stream must deliver its whole request (the client's half of it) within the request
 * timeout, or it is reset. node's http2 has neither limit, so a client could keep a connection or a stream open
 * forever by sending nothing (slow-loris). Streams still answering (Tail) are not limited: only their request side.
 */
export function limitHttp2Clients(server: http2.Http2Server | http2.Http2SecureServer, options: ListenerOptions): void {
  server.on("session", (session) => {
    const timer = setTimeout(() => session.destroy(), options.headersTimeoutMs).unref();
    session.once("stream", () => clearTimeout(timer));
    session.once("close", () => clearTimeout(timer));
  });
  server.on("stream", (stream: http2.ServerHttp2Stream) => {
    if (stream.endAfterHeaders) return;
    const timer = setTimeout(() => {
      if (!stream.destroyed && !stream.state.remoteClose) stream.close(http2.constants.NGHTTP2_CANCEL);
    }, options.requestTimeoutMs).unref();
    stream.once("close", () => clearTimeout(timer));
  });
}

/**
 * A request answered before its body was read to the end (refused for its size, or answered without needing the
 * body) must not make the server read the rest: a client could stream gigabytes into a request the server has
 * already answered. Once the answer is out, an HTTP/1.1 connection is closed (node would otherwise read and discard
 * the rest to reach the next request). HTTP/2 needs nothing here: node resets an answered stream whose client is still
 * sending with NO_ERROR (RFC 9113 §8.1) unless the answer has trailers (gRPC's), and then the paused stream's
 * flow-control window stops the client. Readers that stop early pause the request, so nothing more is read meanwhile.
 */
export function closeUnreadBodies(req: Parameters<NodeHandler>[0], res: Parameters<NodeHandler>[1]): void {
  if (req.httpVersionMajor === 2) return;
  // An answer that starts before the request's body has arrived in full does not depend on the rest (every handler
  // here reads its whole request first): it says `connection: close`, so the client does not send another request
  // on this connection, and node closes it after the answer.
  const response = res as http.ServerResponse;
  const writeHead = response.writeHead;
  response.writeHead = function (this: http.ServerResponse, ...args: Parameters<typeof writeHead>) {
    if (!req.complete) this.shouldKeepAlive = false;
    return writeHead.apply(this, args);
  } as typeof writeHead;
  // Taken now: node detaches the socket from the request once the response is done. node closes a connection with
  // socket.destroySoon(); this connection lingers instead.
  const socket = req.socket;
  socket.destroySoon = lingeringClose;
  res.once("prefinish", () => {
    if (req.complete) return;
    // node "dumps" a request nobody has started reading once its answer is done: it reads the rest of the body at
    // full speed and throws it away. One read() (of what is buffered, at most the stream's high-water mark) marks it
    // as being read, so node leaves it alone, and the socket stops again once the request's buffer is full.
    req.read();
    socket.destroySoon();
  });
}

/** How long a closing HTTP/1.1 connection whose client is still sending stays open for the client to read the answer. */
export const LINGER_MS = 2000;

/**
 * Half-closes the connection once the answer is written, and destroys it LINGER_MS later unless the client closes
 * first. Destroying it at once while the client is still sending makes TCP reset the connection, and a reset can
 * discard the answer before the client reads it. Nothing is read meanwhile: the unread body stays in the kernel's
 * buffers and the client's.
 */
function lingeringClose(this: net.Socket): void {
  if (this.writable) this.end();
  setTimeout(() => this.destroy(), LINGER_MS).unref();
}

/** node's own answers to requests its parser refuses, by error code; anything else is a 400. */
const PARSER_REFUSALS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Payload Too Large",
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
};

/**
 * node's answer to a request its parser refuses, except that a client still sending (headers over the limit) gets a
 * lingering close rather than a reset, so it reads the 431 instead of ECONNRESET.
 */
function refuseMalformedRequest(error: Error & { code?: string }, socket: net.Socket): void {
  // As node does: no status line in the middle of a response already under way on this connection.
  const current = (socket as net.Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
  if (socket.writable && !current?.headersSent) {
    const status = PARSER_REFUSALS[error.code ?? ""] ?? "400 Bad Request";
    socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
  }
  if (error.code === "HPE_HEADER_OVERFLOW") lingeringClose.call(socket);
  else socket.destroy(error);
}

/**
 * One cleartext port for HTTP/1.1 and HTTP/2 with prior knowledge (h2c). Node's http2 has no cleartext fallback,
 * so each connection's first bytes are compared with the HTTP/2 preface and the socket is handed to the matching
 * server. Browsers speak HTTP/1.1 (or h2 over TLS); gRPC clients send the preface.
 */
export function createCleartextListener(listener: NodeHandler, options: ListenerOptions, take?: StreamTaker) {
  const h1 = http.createServer(
    {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
      maxHeaderSize: options.maxHeaderBytes,
      keepAliveTimeout: 5_000,
    },
    listener,
  );
  h1.on("clientError", refuseMalformedRequest);
  // node enforces headersTimeout and requestTimeout only for connections it tracks, and starts tracking when the
  // server listens. This one never listens (the TCP server below hands it sockets), so start it here; without it a
  // client sending its headers a byte at a time held the connection forever. close() stops the tracking.
  h1.emit("listening");
  const h2 = http2.createServer(
    {
      maxSessionMemory: 32,
      maxHeaderListPairs: 256,
      settings: { maxHeaderListSize: options.maxHeaderBytes, maxConcurrentStreams: options.maxConcurrentStreams },
    },
    listener,
  );
  if (take) takeHttp2Streams(h2, take);
  limitHttp2Clients(h2, options);
  const tcp = net.createServer((socket) => {
    // A connection must send its first bytes in time, however slowly it trickles them (slow-loris).
    const firstBytes = setTimeout(() => socket.destroy(), options.headersTimeoutMs).unref();
    socket.once("close", () => clearTimeout(firstBytes));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && head.length < PREFACE.length) return;
      socket.off("data", onData);
      socket.pause();
      clearTimeout(firstBytes);
      socket.unshift(head);
      if (isH2) {
        // The http2 session feeds itself what is buffered on the socket, then reads the handle natively;
        // resuming the JS stream here would emit those bytes to nobody.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        // On the next tick, not now: resumed synchronously, the socket's handle kept reading while node's HTTP/1
        // parser had it paused for a request body nobody was reading yet (say, during authentication), so that body
        // was buffered without bound (a 64 MiB upload sat in memory whole).
        process.nextTick(() => socket.resume());
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });
  return { tcp, h1, h2 };
}
