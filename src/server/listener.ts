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
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxHeaderBytes: number;
}

/**
 * One cleartext port for HTTP/1.1 and HTTP/2 with prior knowledge (h2c). Node's http2 has no cleartext fallback,
 * so each connection's first bytes are compared with the HTTP/2 preface and the socket is handed to the matching
 * server. Browsers speak HTTP/1.1 (or h2 over TLS); gRPC clients send the preface.
 */
export function createCleartextListener(listener: NodeHandler, options: ListenerOptions) {
  const h1 = http.createServer(
    {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      maxHeaderSize: options.maxHeaderBytes,
      keepAliveTimeout: 5_000,
    },
    listener,
  );
  const h2 = http2.createServer(
    { maxSessionMemory: 32, maxHeaderListPairs: 256, settings: { maxHeaderListSize: options.maxHeaderBytes } },
    listener,
  );
  const tcp = net.createServer((socket) => {
    // A connection that never sends its first bytes must not be held open (slow-loris).
    socket.setTimeout(options.headersTimeoutMs, () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && head.length < PREFACE.length) return;
      socket.off("data", onData);
      socket.pause();
      socket.setTimeout(0);
      socket.unshift(head);
      if (isH2) {
        // The http2 session feeds itself what is buffered on the socket, then reads the handle natively;
        // resuming the JS stream here would emit those bytes to nobody.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });
  return { tcp, h1, h2 };
}
