import http2 from "node:http2";
import { ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus, endStreamFromJson, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { h2Request, type RawH2Response } from "../support/h2.js";
import type { Outcome } from "./harness.js";

/** A gRPC-style length-prefixed message: flags, 4-byte big-endian length, payload. */
export function envelope(flags: number, payload: Uint8Array, declaredLength = payload.length): Buffer {
  const header = Buffer.alloc(5);
  header[0] = flags;
  header.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([header, payload]);
}

/** Splits a body into its envelopes; a trailing partial envelope is returned as `rest`. */
export function splitEnvelopes(body: Buffer): { frames: { flags: number; data: Buffer }[]; rest: Buffer } {
  const frames: { flags: number; data: Buffer }[] = [];
  let pos = 0;
  while (body.length - pos >= 5) {
    const length = body.readUInt32BE(pos + 1);
    if (body.length - pos - 5 < length) break;
    frames.push({ flags: body[pos] as number, data: body.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return { frames, rest: body.subarray(pos) };
}

function fromError(error: ConnectError | undefined, status: number | undefined): Outcome {
  if (!error) return { status, code: 0, detail: "OK" };
  // Fields named by a google.rpc.BadRequest, or by the ErrorInfo's `field` metadata (errors about one field).
  const fields = [
    ...error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field)),
    ...error.findDetails(ErrorInfoSchema).flatMap((d) => (d.metadata.field ? [d.metadata.field] : [])),
  ];
  return {
    status,
    code: error.code,
    fields,
    reason: error.findDetails(ErrorInfoSchema)[0]?.reason,
    detail: `${error.rawMessage}${fields.length ? ` [${fields.join(", ")}]` : ""}`,
  };
}

/**
 * Raw HTTP/2 requests over a few shared sessions, so thousands of cases reuse a handful of connections. A session the
 * server closed is replaced on the next request.
 */
export class H2Client {
  private readonly sessions: (http2.ClientHttp2Session | undefined)[];
  private next = 0;

  constructor(
    private readonly url: string,
    size = 4,
  ) {
    this.sessions = new Array(size).fill(undefined);
  }

  private session(): http2.ClientHttp2Session {
    const i = this.next++ % this.sessions.length;
    const existing = this.sessions[i];
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const session = http2.connect(this.url);
    session.on("error", () => {});
    session.once("close", () => {
      if (this.sessions[i] === session) this.sessions[i] = undefined;
    });
    this.sessions[i] = session;
    return session;
  }

  /** Sends the request; with `end` false the stream stays open after the body, as a stalled client's would. */
  request(
    headers: http2.OutgoingHttpHeaders,
    body: Uint8Array | undefined,
    signal: AbortSignal,
    session = this.session(),
    end = true,
  ): Promise<RawH2Response> {
    return h2Request(session, headers, body, { signal, end });
  }

  close(): void {
    for (const s of this.sessions) s?.close();
  }
}

/** A gRPC response (trailers-only, or headers, messages and trailers) as an Outcome. */
export function grpcOutcome(r: RawH2Response): Outcome {
  const status = Number(r.headers[":status"]);
  const all = new Headers();
  for (const source of [r.headers, r.trailers]) {
    for (const [k, v] of Object.entries(source)) {
      if (!k.startsWith(":") && v !== undefined) all.set(k, Array.isArray(v) ? v.join(", ") : String(v));
    }
  }
  if (all.has("grpc-status")) return fromError(findTrailerError(all), status);
  if (r.rstCode !== 0 || r.error)
    return { status, cut: `RST_STREAM ${r.rstCode}${r.error ? `, ${r.error}` : ""}`, detail: "" };
  return { status, detail: `no grpc-status; body ${r.body.subarray(0, 200).toString("latin1")}` };
}

/** A gRPC-web response: the status in the headers (trailers-only) or in the trailer frame at the end of the body. */
export async function grpcWebOutcome(res: Response): Promise<Outcome> {
  const body = Buffer.from(await res.arrayBuffer());
  if (res.headers.has("grpc-status")) return fromError(findTrailerError(res.headers), res.status);
  const trailer = splitEnvelopes(body).frames.find((f) => f.flags & 0x80);
  if (!trailer)
    return { status: res.status, detail: `no trailer frame; body ${body.subarray(0, 200).toString("latin1")}` };
  return fromError(findTrailerError(trailerParse(trailer.data)), res.status);
}

/** A Connect unary response: HTTP 200 is OK; otherwise the error JSON (or just the HTTP status). */
export async function connectOutcome(res: Response): Promise<Outcome> {
  const body = new Uint8Array(await res.arrayBuffer());
  if (res.status === 200) return { status: 200, code: 0, detail: "OK" };
  const text = Buffer.from(body).toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: below.
  }
  // Without a Connect error body (a 415 or 405 from the router) there is only the HTTP status.
  if (typeof json !== "object" || json === null || typeof (json as { code?: unknown }).code !== "string") {
    return { status: res.status, detail: `no Connect error body: ${text.slice(0, 200)}` };
  }
  return fromError(
    errorFromJsonBytes(body, undefined, new ConnectError("", codeFromHttpStatus(res.status))),
    res.status,
  );
}

/** A Connect streaming response: the end-stream frame's error, if any. */
export async function connectStreamOutcome(res: Response): Promise<Outcome> {
  if (res.status !== 200) return connectOutcome(res);
  const body = Buffer.from(await res.arrayBuffer());
  const end = splitEnvelopes(body).frames.find((f) => f.flags & 0x02);
  if (!end) return { status: 200, detail: `no end-stream frame; body ${body.subarray(0, 200).toString("latin1")}` };
  return fromError(endStreamFromJson(end.data).error, 200);
}

/** A REST or legacy response: its status, the start of its body, and a google.rpc.Status body's reason and fields. */
export async function httpOutcome(res: Response): Promise<Outcome> {
  return restOutcome(res.status, res.headers.get("content-type") ?? "", await res.text());
}

interface StatusJson {
  details?: {
    "@type"?: string;
    reason?: string;
    metadata?: { field?: string };
    fieldViolations?: { field?: string }[];
  }[];
}

/** An HTTP answer as an Outcome; a google.rpc.Status JSON body (REST's errors) gives its reason and fields. */
export function restOutcome(status: number | undefined, contentType: string, text: string): Outcome {
  const outcome: Outcome = { status, detail: `${contentType} ${text.slice(0, 300)}` };
  let json: StatusJson | undefined;
  try {
    json = JSON.parse(text) as StatusJson;
  } catch {
    return outcome;
  }
  const details = Array.isArray(json?.details) ? json.details : [];
  const info = details.find((d) => d["@type"]?.endsWith("google.rpc.ErrorInfo"));
  const violations = details.flatMap((d) =>
    d["@type"]?.endsWith("google.rpc.BadRequest") ? (d.fieldViolations ?? []) : [],
  );
  outcome.reason = info?.reason;
  outcome.fields = [
    ...violations.flatMap((v) => (v.field ? [v.field] : [])),
    ...(info?.metadata?.field ? [info.metadata.field] : []),
  ];
  return outcome;
}
