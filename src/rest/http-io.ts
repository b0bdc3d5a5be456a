import type http from "node:http";
import type http2 from "node:http2";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
export type NodeHeaders = Record<string, string | string[]>;

/** The client hung up before its request was complete: there is no one left to answer. */
export class ClientGoneError extends Error {}

export function send(res: NodeResponse, status: number, headers: NodeHeaders, body: Uint8Array | string): void {
  const length = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
  (res as http.ServerResponse).writeHead(status, { ...headers, "content-length": String(length) });
  res.end(body);
}

/** Writes a chunk, waiting while the socket is full; resolves false once the client has gone. */
export function write(res: NodeResponse, chunk: Uint8Array | string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if ((res as http.ServerResponse).write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}
