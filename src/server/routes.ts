import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";

export interface Services {
  audit: ServiceImpl<typeof AuditService>;
}

/** Every RPC service the port serves; REST and legacy routes reach the same implementations through these. */
export function registerRoutes(services: Services) {
  return (router: ConnectRouter) => {
    router.service(AuditService, services.audit);
  };
}
