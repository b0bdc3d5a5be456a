import {
  type Client,
  type ConnectRouter,
  type ConnectRouterOptions,
  createClient,
  createRouterTransport,
} from "@connectrpc/connect";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";

export interface InProcessClients {
  audit: Client<typeof AuditService>;
  admin: Client<typeof AdminService>;
}

/**
 * Typed clients that call the service's own handlers in memory, through the same interceptors as the network
 * (auth, error mapping, limits). Legacy adapters use these instead of touching the store, and pass the caller's
 * credential as an `authorization` header on each call.
 */
export function createInProcessClients(
  routes: (router: ConnectRouter) => void,
  routerOptions: ConnectRouterOptions,
): InProcessClients {
  const transport = createRouterTransport(routes, { router: routerOptions });
  return { audit: createClient(AuditService, transport), admin: createClient(AdminService, transport) };
}
