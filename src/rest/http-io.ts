import type http from "node:http";
import type http2 from "node:http2";

export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;
export type NodeHeaders = Record<string, string | string[]>;

/** The client hung up before its request was complete: there is no one left to answer. */
export class ClientGoneError extends Error {}

/**
 * The whole request body, or undefined once it passes `limit` bytes. Reading stops there without destroying the
 * request, so the caller can still answer 413; the declared Content-Length is checked before reading anything.
 */
export function readBody(req: NodeRequest, limit: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        resolve(undefined);
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new ClientGoneError(error.message));
    };
    // A client that hangs up mid-body: nothing to answer.
    const onClose = () => {
      cleanup();
      reject(new ClientGoneError("the client closed the request before sending its body"));
    };
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}

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
