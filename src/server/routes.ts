import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { FrontierService } from "../../gen/raystack/frontier/v1beta1/frontier_pb.js";
import type { ServiceRegistration } from "./grpc-unary.js";

export interface Services {
  audit: ServiceImpl<typeof AuditService>;
  /** Assembled from the identity and template handler sets; a missing method answers UNIMPLEMENTED. */
  admin: Partial<ServiceImpl<typeof AdminService>>;
  /** Frontier's audit-log RPCs, served from its own contract (proto/raystack/frontier/v1beta1). */
  frontier: ServiceImpl<typeof FrontierService>;
}

/**
 * Every RPC service the port serves, with its implementation: the router, the direct gRPC path and the in-process
 * clients of the legacy adapters share them.
 */
export function serviceRegistrations(services: Services): ServiceRegistration[] {
  return [
    { service: AuditService, impl: services.audit },
    { service: AdminService, impl: services.admin },
    { service: FrontierService, impl: services.frontier },
  ] as ServiceRegistration[];
}

/** The Connect router's routes; REST reaches the same implementations through them. */
export function registerRoutes(services: Services) {
  return (router: ConnectRouter) => {
    for (const { service, impl } of serviceRegistrations(services)) router.service(service, impl);
  };
}
