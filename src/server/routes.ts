import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { FrontierService } from "../../gen/raystack/frontier/v1beta1/frontier_pb.js";
import { registration, type ServiceRegistration } from "./invoker.js";

export interface Services {
  audit: ServiceImpl<typeof AuditService>;
  /** Assembled from the identity and template handler sets. */
  admin: ServiceImpl<typeof AdminService>;
  /** Frontier's audit-log RPCs, served from its own contract (proto/raystack/frontier/v1beta1). */
  frontier: ServiceImpl<typeof FrontierService>;
}

/**
 * Every RPC service the port serves, with its implementation: the router and the invoker (the direct gRPC path, REST
 * and the legacy APIs) share them.
 */
export function serviceRegistrations(services: Services): ServiceRegistration[] {
  return [
    registration(AuditService, services.audit),
    registration(AdminService, services.admin),
    registration(FrontierService, services.frontier),
  ];
}

/** The Connect router's routes. */
export function registerRoutes(services: Services) {
  return (router: ConnectRouter) => {
    for (const { service, impl } of serviceRegistrations(services)) router.service(service, impl);
  };
}
