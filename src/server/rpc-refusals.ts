import type http from "node:http";
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectError } from "@connectrpc/connect";
import { domainError, Reason } from "../errors.js";
import { connectErrorJson, negotiationFailure, setGrpcStatus } from "./invoker.js";
import type { NodeHandler } from "./listener.js";

type NodeRequest = Parameters<NodeHandler>[0];
type NodeResponse = Parameters<NodeHandler>[1];

/** A refusal of a request on an RPC path, answered before (or instead of) the call: the error and its HTTP status. */
export interface RpcRefusal {
  error: ConnectError;
  httpStatus: number;
  headers?: Record<string, string>;
}

const GRPC_CONTENT_TYPE = /^application\/grpc(?:-web)?(?:\+|;|$)/i;

/**
 * The refusal behind connect-es's bodiless 405 and 415 responses (protocol negotiation failed), or undefined for any
 * other response. They say nothing a caller can act on; this one names what to send instead.
 */
export function negotiationRefusal(
  method: DescMethod,
  req: NodeRequest,
  uRes: Parameters<typeof negotiationFailure>[0],
): RpcRefusal | undefined {
  const path = (req.url ?? "").split("?", 1)[0];
  const failure = negotiationFailure(uRes);
  if (failure === "method") {
    const allow = sideEffectFree(method) ? "GET, POST" : "POST";
    const error = domainError(
      Code.Unimplemented,
      Reason.MethodNotAllowed,
      `${req.method} is not allowed on ${path}; use ${allow.replace(", ", " or ")}`,
      { allow },
    );
    return { error, httpStatus: 405, headers: { allow } };
  }
  if (failure === "media-type") {
    const given = req.headers["content-type"];
    const connect =
      method.methodKind === "unary"
        ? "application/json or application/proto (Connect)"
        : "application/connect+json or application/connect+proto (Connect streaming)";
    const error = domainError(
      Code.InvalidArgument,
      Reason.UnsupportedMediaType,
      `the content type must be ${connect}, application/grpc (gRPC) or application/grpc-web (gRPC-web), ` +
        `not ${given ? `"${given}"` : "missing"}`,
      { contentType: given ?? "" },
    );
    return { error, httpStatus: 415 };
  }
  return undefined;
}

/** UNIMPLEMENTED for a path under a served service (`/audit.v1.AuditService/…`) that names none of its methods. */
export function unknownProcedure(path: string, methods: readonly DescMethod[]): RpcRefusal {
  const service = methods[0]?.parent.typeName ?? "";
  const error = domainError(
    Code.Unimplemented,
    Reason.UnknownProcedure,
    `${path} is not a procedure; ${service} has ${methods.map((m) => m.name).join(", ")}`,
  );
  return { error, httpStatus: 404 };
}

/**
 * Answers a refusal in the caller's RPC protocol: by content type, a gRPC or gRPC-web trailers-only response (HTTP
 * 200, the status in `grpc-status` and `grpc-status-details-bin`), else a Connect error (JSON with code, message and
 * details) under the refusal's HTTP status.
 */
export function sendRpcRefusal(req: NodeRequest, res: NodeResponse, refusal: RpcRefusal, requestId: string): void {
  const out = res as http.ServerResponse;
  const contentType = String(req.headers["content-type"] ?? "");
  if (GRPC_CONTENT_TYPE.test(contentType)) {
    const headers = setGrpcStatus(new Headers({ "content-type": contentType }), refusal.error);
    out.writeHead(200, { ...Object.fromEntries(headers), ...refusal.headers, "x-request-id": requestId });
    out.end();
    return;
  }
  const body = connectErrorJson(refusal.error);
  out.writeHead(refusal.httpStatus, {
    ...refusal.headers,
    "content-type": "application/json",
    "content-length": body.byteLength,
    "x-request-id": requestId,
  });
  out.end(body);
}

function sideEffectFree(method: DescMethod): boolean {
  return method.methodKind === "unary" && method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}
