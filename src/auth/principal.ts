import { createContextKey } from "@connectrpc/connect";
import { CredentialKind, Role } from "../../gen/audit/v1/admin_service_pb.js";

/** Who is calling, as established by the auth interceptor. Handlers read it from the context. */
export interface Principal {
  credentialId: string;
  kind: CredentialKind;
  /** Empty for global credentials (superadmin). */
  tenant: string;
  roles: ReadonlySet<Role>;
  /** User name for users and sessions; key name for API keys. */
  name: string;
  /** Sessions only: what legacy APIs echo back about the session. */
  session?: { createdAt: string; lastUsedAt: string | undefined; expiresAt: string | undefined; rememberMe: boolean };
}

export const kPrincipal = createContextKey<Principal | undefined>(undefined, {
  description: "the authenticated caller",
});

/** The network address of the caller (the TCP peer), when the call came over the network: password throttling keys on it. */
export const kClientAddress = createContextKey<string | undefined>(undefined, {
  description: "the caller's network address",
});

export function isSuperadmin(p: Principal): boolean {
  return p.roles.has(Role.SUPERADMIN);
}

/** Whether the principal's roles grant `required`: admin includes reader and writer; superadmin includes all. */
export function grants(p: Principal, required: Role): boolean {
  if (p.roles.has(Role.SUPERADMIN) || p.roles.has(required)) return true;
  return p.roles.has(Role.ADMIN) && required !== Role.SUPERADMIN;
}

export { CredentialKind, Role };
