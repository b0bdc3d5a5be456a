import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import type { TemplateAdmin } from "../service/template-admin.js";

export interface Services {
  audit: ServiceImpl<typeof AuditService>;
  // Only the template RPCs so far; tenants and credentials join them here. Connect answers the others UNIMPLEMENTED.
  templates: TemplateAdmin;
}

/** Every RPC service the port serves; REST and legacy routes reach the same implementations through these. */
export function registerRoutes(services: Services) {
  return (router: ConnectRouter) => {
    router.service(AuditService, services.audit);
    router.service(AdminService, { ...services.templates });
  };
}
