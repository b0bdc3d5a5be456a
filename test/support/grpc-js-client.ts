import path from "node:path";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { type ErrorInfo, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// Loaded from the .proto sources, not the generated code, so the tests check the contract as any gRPC client sees it.
const definition = protoLoader.loadSync(["audit/v1/audit_service.proto", "audit/v1/admin_service.proto"], {
  includeDirs: [path.join(root, "proto"), path.join(root, "node_modules/google-proto-files")],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const audit = (grpc.loadPackageDefinition(definition).audit as grpc.GrpcObject).v1 as grpc.GrpcObject;

/** A message as @grpc/proto-loader decodes it: camelCase fields, int64 as strings, enums as names. */
// biome-ignore lint/suspicious/noExplicitAny: dynamic messages from proto-loader have no static type.
export type GrpcMessage = Record<string, any>;

export interface GrpcClients {
  audit: grpc.Client;
  admin: grpc.Client;
  /** A unary call as a promise; `method` as the .proto names it ("Publish"). */
  call(client: grpc.Client, method: string, request: GrpcMessage): Promise<GrpcMessage>;
  /** A server-streaming call. */
  stream(client: grpc.Client, method: string, request: GrpcMessage): grpc.ClientReadableStream<GrpcMessage>;
  close(): void;
}

/** @grpc/grpc-js clients for AuditService and AdminService on the service at `url` (h2c), calling with `token`. */
export function grpcClients(url: string, token?: string): GrpcClients {
  const target = new URL(url).host;
  const make = (name: string) => {
    const Ctor = audit[name] as grpc.ServiceClientConstructor;
    return new Ctor(target, grpc.credentials.createInsecure());
  };
  const method = (client: grpc.Client, name: string) => {
    const fn = (client as unknown as Record<string, CallableFunction>)[name];
    if (!fn) throw new Error(`no method ${name}`);
    return fn.bind(client);
  };
  const metadata = () => {
    const m = new grpc.Metadata();
    if (token) m.set("authorization", `Bearer ${token}`);
    return m;
  };
  const auditClient = make("AuditService");
  const adminClient = make("AdminService");
  return {
    audit: auditClient,
    admin: adminClient,
    call(client, name, request) {
      return new Promise((resolve, reject) => {
        method(client, name)(request, metadata(), (error: grpc.ServiceError | null, response: GrpcMessage) =>
          error ? reject(error) : resolve(response),
        );
      });
    },
    stream(client, name, request) {
      return method(client, name)(request, metadata());
    },
    close() {
      auditClient.close();
      adminClient.close();
    },
  };
}

/** The google.rpc.Status of a gRPC error, from its grpc-status-details-bin trailer. */
export function grpcStatus(error: grpc.ServiceError): { message: string; info: ErrorInfo | undefined } | undefined {
  const [bin] = error.metadata.get("grpc-status-details-bin");
  if (!bin) return undefined;
  const status = fromBinary(StatusSchema, typeof bin === "string" ? Buffer.from(bin, "base64") : bin);
  const info = status.details.map((d) => anyUnpack(d, ErrorInfoSchema)).find((i) => i !== undefined);
  return { message: status.message, info };
}
