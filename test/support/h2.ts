import http2 from "node:http2";

/** What came back on one raw HTTP/2 stream. */
export interface RawH2Response {
  /** The response headers (`:status` included); empty when the stream was reset first. */
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** The RST_STREAM code when the server reset the stream; 0 when it ended normally. */
  rstCode: number;
  error?: string;
}

export interface H2RequestOptions {
  /** Aborting resets the stream (CANCEL) and rejects. */
  signal?: AbortSignal;
  /** False leaves the request open after the body, as a stalled client's would. Default true. */
  end?: boolean;
  /**
   * Resolve at the trailers rather than when the stream closes: connect-node answers an oversized gRPC message
   * without reading the rest of the body, so that stream never closes while the client keeps its half open.
   */
  untilTrailers?: boolean;
}

/** One request on a raw HTTP/2 session, sent exactly as given: the tests' one HTTP/2 client below the RPC clients. */
export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Uint8Array,
  options: H2RequestOptions = {},
): Promise<RawH2Response> {
  const { signal, end = true, untilTrailers = false } = options;
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: end && body === undefined });
    const reply: RawH2Response = { headers: {}, trailers: {}, body: Buffer.alloc(0), rstCode: 0 };
    const chunks: Buffer[] = [];
    const done = () => resolve({ ...reply, body: Buffer.concat(chunks), rstCode: stream.rstCode ?? 0 });
    const onAbort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
    signal?.addEventListener("abort", onAbort, { once: true });
    stream.on("response", (h) => {
      reply.headers = h;
    });
    stream.on("trailers", (t) => {
      reply.trailers = t;
      if (untilTrailers) done();
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (e) => {
      reply.error = e.message;
    });
    stream.on("close", () => {
      signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted) reject(signal.reason);
      else done();
    });
    if (body !== undefined && end) stream.end(body);
    else if (body !== undefined) stream.write(body);
  });
}
