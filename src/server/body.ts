import type http from "node:http";
import type http2 from "node:http2";

/** Why a body could not be read: it passed the limit, or the client went away before sending all of it. */
export type BodyProblem = "too-large" | "aborted";

/**
 * The whole request body, refusing more than `limit` bytes without buffering them: a declared Content-Length over the
 * limit is refused before anything is read, and reading stops at the limit without destroying the request, so the
 * caller can still answer (the server closes the stream or connection once the answer is out, see closeUnreadBodies).
 */
export function readBody(
  req: http.IncomingMessage | http2.Http2ServerRequest,
  limit: number,
): Promise<Buffer | BodyProblem> {
  if (Number(req.headers["content-length"]) > limit) return Promise.resolve("too-large");
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (value: Buffer | BodyProblem) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onAborted);
      req.off("close", onAborted);
      resolve(value);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        finish("too-large");
      } else {
        chunks.push(chunk);
      }
    };
    const onEnd = () => finish(Buffer.concat(chunks, size));
    const onAborted = () => finish("aborted");
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onAborted);
    // Closed before its end: the client hung up mid-body.
    req.once("close", onAborted);
  });
}
