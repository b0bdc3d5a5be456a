import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";

export interface Services {
  audit: ServiceImpl<typeof AuditService>;
  /** Assembled from the identity and template handler sets; a missing method answers UNIMPLEMENTED. */
  admin: Partial<ServiceImpl<typeof AdminService>>;
}

/** Every RPC service the port serves; REST and legacy routes reach the same implementations through these. */
export function registerRoutes(services: Services) {
  return (router: ConnectRouter) => {
    router.service(AuditService, services.audit);
    router.service(AdminService, services.admin);
  };
}
