/**
 * The ceiling for unary Create: the same framework (connect-node, HTTP/2 cleartext), the same request and response
 * types, no storage, no interceptors. Prints its port on stdout, serves until killed.
 */
import http2 from "node:http2";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AuditService } from "../gen/audit/v1/audit_service_pb.js";

const routes = (router: ConnectRouter) => router.rpc(AuditService.method.create, async (req) => ({ event: req.event }));

const server = http2.createServer(connectNodeAdapter({ routes }));
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === "object" ? address?.port : 0 })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
