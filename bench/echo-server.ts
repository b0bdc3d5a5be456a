/**
 * Echo servers for unary Create: the same request and response types, no storage, no interceptors. They bound what
 * the service could reach. argv[2] picks one:
 *   connect     connect-node on node:http2 (h2c): the service's framework, the ceiling the target is set against
 *   node-http2  a minimal gRPC-shaped handler on node:http2 with protobuf-es: the cost of the framework itself
 *   grpc-js     @grpc/grpc-js with proto-loader: the reference gRPC server for Node
 * Prints {"port": n} on stdout, serves until SIGTERM.
 */
import http2 from "node:http2";
import path from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AuditService, CreateRequestSchema, CreateResponseSchema } from "../gen/audit/v1/audit_service_pb.js";

const mode = process.argv[2] ?? "connect";

function announce(port: number) {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

async function main(): Promise<() => Promise<void>> {
  if (mode === "grpc-js") {
    const grpc = await import("@grpc/grpc-js");
    const loader = await import("@grpc/proto-loader");
    const definition = loader.loadSync("audit/v1/audit_service.proto", {
      includeDirs: [path.resolve("proto"), path.resolve("node_modules/google-proto-files")],
    });
    const descriptor = grpc.loadPackageDefinition(definition) as unknown as {
      audit: { v1: { AuditService: { service: import("@grpc/grpc-js").ServiceDefinition } } };
    };
    const server = new grpc.Server();
    server.addService(descriptor.audit.v1.AuditService.service, {
      Create: (call: { request: { event: unknown } }, callback: (error: null, value: unknown) => void) =>
        callback(null, { event: call.request.event }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    announce(port);
    return () => new Promise((resolve) => server.tryShutdown(() => resolve()));
  }

  const server =
    mode === "node-http2"
      ? http2.createServer().on("stream", (stream) => {
          const chunks: Buffer[] = [];
          stream.on("data", (chunk: Buffer) => chunks.push(chunk));
          stream.on("end", () => {
            const frame = Buffer.concat(chunks);
            const request = fromBinary(CreateRequestSchema, frame.subarray(5, 5 + frame.readUInt32BE(1)));
            const message = toBinary(CreateResponseSchema, create(CreateResponseSchema, { event: request.event }));
            const out = Buffer.alloc(5 + message.length);
            out.writeUInt32BE(message.length, 1);
            out.set(message, 5);
            stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
            stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
            stream.end(out);
          });
        })
      : http2.createServer(
          connectNodeAdapter({
            routes: (router: ConnectRouter) =>
              router.rpc(AuditService.method.create, async (req) => ({ event: req.event })),
          }),
        );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  announce(typeof address === "object" && address ? address.port : 0);
  return () => new Promise((resolve) => server.close(() => resolve()));
}

const stop = await main();
process.on("SIGTERM", () => {
  setTimeout(() => process.exit(0), 2000).unref();
  void stop().then(() => process.exit(0));
});
