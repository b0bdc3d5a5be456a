import path from "node:path";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  type BadRequest,
  BadRequestSchema,
  type ErrorInfo,
  ErrorInfoSchema,
} from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Loaded from the .proto sources with @grpc/proto-loader, never from gen/, so these tests see the contract the way any
 * third-party gRPC client does. `defaults: false` leaves unset fields out of decoded messages, as proto3 JSON does.
 */
const definition = protoLoader.loadSync(["audit/v1/audit_service.proto", "audit/v1/admin_service.proto"], {
  includeDirs: [path.join(root, "proto"), path.join(root, "node_modules/google-proto-files")],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
});

/** A message as @grpc/proto-loader encodes and decodes it: camelCase fields, int64 as strings, enums as names. */
// biome-ignore lint/suspicious/noExplicitAny: proto-loader messages are dynamic.
export type GrpcMessage = Record<string, any>;

export type GrpcService = "AuditService" | "AdminService";

export interface GrpcJsClient {
  /** One unary call; `method` as the .proto names it ("BatchCreate"). Rejects with a grpc.ServiceError. */
  unary(service: GrpcService, method: string, request: GrpcMessage): Promise<GrpcMessage>;
  /** A server-streaming call ("Tail"), without a deadline; cancel() ends it. */
  serverStream(service: GrpcService, method: string, request: GrpcMessage): grpc.ClientReadableStream<GrpcMessage>;
  close(): void;
}

/**
 * A @grpc/grpc-js client for the service at `url`, sending `authorization: Bearer <token>`: HTTP/2 cleartext, or TLS
 * with `credentials` (grpc.credentials.createSsl).
 */
export function grpcJsClient(
  url: string,
  token?: string,
  options: { deadlineMs?: number; credentials?: grpc.ChannelCredentials } = {},
): GrpcJsClient {
  const client = new grpc.Client(new URL(url).host, options.credentials ?? grpc.credentials.createInsecure());
  const methodOf = (service: GrpcService, method: string) => {
    const def = (definition[`audit.v1.${service}`] as grpc.ServiceDefinition | undefined)?.[method];
    if (!def) throw new Error(`audit.v1.${service} has no method ${method}`);
    return def;
  };
  const metadata = () => {
    const m = new grpc.Metadata();
    if (token) m.set("authorization", `Bearer ${token}`);
    return m;
  };
  return {
    unary(service, method, request) {
      const def = methodOf(service, method);
      const deadline = Date.now() + (options.deadlineMs ?? 30_000);
      return new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          request,
          metadata(),
          { deadline },
          (error: grpc.ServiceError | null, response?: GrpcMessage) =>
            error || !response ? reject(error) : resolve(response),
        );
      });
    },
    serverStream(service, method, request) {
      const def = methodOf(service, method);
      return client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        metadata(),
      ) as grpc.ClientReadableStream<GrpcMessage>;
    },
    close: () => client.close(),
  };
}

export interface GrpcErrorDetails {
  /** The google.rpc.Status message: exact, unlike `error.details`, which grpc-js decodes with decodeURI. */
  message?: string;
  errorInfo?: ErrorInfo;
  badRequest?: BadRequest;
}

/** The google.rpc.Status of a gRPC error (message, ErrorInfo, BadRequest), from its grpc-status-details-bin trailer. */
export function grpcErrorDetails(error: grpc.ServiceError): GrpcErrorDetails {
  const [bin] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!bin) return {};
  const status = fromBinary(StatusSchema, typeof bin === "string" ? Buffer.from(bin, "base64") : bin);
  const found: GrpcErrorDetails = { message: status.message };
  for (const detail of status.details) {
    found.errorInfo ??= anyUnpack(detail, ErrorInfoSchema);
    found.badRequest ??= anyUnpack(detail, BadRequestSchema);
  }
  return found;
}
