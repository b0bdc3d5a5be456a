import type http from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "./http-io.js";

const RPC_CONTENT_TYPE = /^application\/(?:grpc|connect\+)/i;
const CONNECT_GET = /(?:^|&)connect=v1(?:&|$)/;

/**
 * Whether a request speaks gRPC, gRPC-web or Connect (by content type, `Connect-Protocol-Version`, or a Connect GET's
 * `?connect=v1`) rather than REST. Such requests belong to the RPC handlers; reaching the transcoder means their path
 * named no procedure.
 */
export function isRpcProtocolRequest(req: NodeRequest): boolean {
  if (RPC_CONTENT_TYPE.test(req.headers["content-type"] ?? "")) return true;
  if (req.headers["connect-protocol-version"] !== undefined) return true;
  const url = req.url ?? "";
  const q = url.indexOf("?");
  return q !== -1 && CONNECT_GET.test(url.slice(q + 1));
}

/** UNIMPLEMENTED in the caller's own protocol: gRPC status headers, or a Connect error with HTTP 404. Returns it. */
export function rejectUnknownProcedure(req: NodeRequest, res: NodeResponse): ConnectError {
  const path = (req.url ?? "").split("?", 1)[0] ?? "";
  const message = `no procedure ${path}`;
  const error = new ConnectError(message, Code.Unimplemented);
  const contentType = req.headers["content-type"] ?? "";
  const out = res as http.ServerResponse;
  if (/^application\/grpc/i.test(contentType)) {
    // A trailers-only response: HTTP 200 with the status in the headers.
    out.writeHead(200, {
      "content-type": contentType,
      "grpc-status": "12",
      "grpc-message": encodeURIComponent(message),
    });
    out.end();
    return error;
  }
  // Connect clients read HTTP 404 as UNIMPLEMENTED, unary and streaming alike.
  const body = JSON.stringify({ code: "unimplemented", message });
  out.writeHead(404, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  out.end(body);
  return error;
}
