import type http from "node:http";
import type http2 from "node:http2";

export type LegacyRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type LegacyResponse = http.ServerResponse | http2.Http2ServerResponse;

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
