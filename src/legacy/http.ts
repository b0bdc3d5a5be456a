import type http from "node:http";
import type http2 from "node:http2";

export type LegacyRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type LegacyResponse = http.ServerResponse | http2.Http2ServerResponse;

/** Why a body could not be read; adapters render each in their own API's format. */
export type BodyProblem = "too-large" | "aborted";

/**
 * The whole request body, refusing more than `limit` bytes without buffering them: reading stops there (the server
 * closes the stream or connection once the answer is out, see closeUnreadBodies).
 */
export function readBody(req: LegacyRequest, limit: number): Promise<Buffer | BodyProblem> {
  return new Promise((resolve) => {
    const declared = Number(req.headers["content-length"] ?? "0");
    if (declared > limit) {
      resolve("too-large");
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Buffer | BodyProblem) => {
      if (done) return;
      done = true;
      resolve(value);
    };
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        finish("too-large");
        req.pause();
        return;
      }
      if (!done) chunks.push(chunk);
    });
    req.on("end", () => finish(Buffer.concat(chunks)));
    req.on("aborted", () => finish("aborted"));
    req.on("error", () => finish("aborted"));
  });
}

/** The media type of a request, lower-cased, without parameters. */
export function mediaType(req: LegacyRequest): string {
  return (
    String(req.headers["content-type"] ?? "")
      .split(";", 1)[0]
      ?.trim()
      .toLowerCase() ?? ""
  );
}

/**
 * XML with a DOCTYPE can declare entities (billion laughs, external files). No legacy API needs one, so such a
 * document is refused before any parser sees it.
 */
export function hasDoctype(xml: string): boolean {
  return /<!DOCTYPE|<!ENTITY/i.test(xml);
}

export function send(res: LegacyResponse, status: number, contentType: string, body: string): void {
  (res as http.ServerResponse).writeHead(status, {
    "content-type": contentType,
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** The value of the Authorization header, or the token a legacy body carries, as a header for in-process calls. */
export function bearer(token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` };
}
