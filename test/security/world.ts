import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { AdminService, AttributeType, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant, type TenantTokens } from "../support/clients.js";

/** Who calls: the seven credentials every route is tried with. */
export const callers = [
  "no credential",
  "wrong token",
  "other tenant's key",
  "reader",
  "writer",
  "admin",
  "superadmin",
] as const;
export type Caller = (typeof callers)[number];

export const PASSWORD = "matrix-password-1";

/** Two tenants with keys and users per role, and data carrying a marker that must never reach the other tenant. */
export interface World {
  app: TestApp;
  acme: TenantTokens;
  globex: TenantTokens;
  sql: postgres.Sql;
  /** A string in every row of acme's data (event actions, actor names, key names, templates, display name). */
  marker: { acme: string; globex: string };
  /** HTTP Basic headers of acme users per role, and of a globex admin user. */
  basic: { reader: string; writer: string; admin: string; globexAdmin: string };
  /** A template each tenant owns (for Publish and GetEventTemplate). */
  template: string;
  wrongToken: string;
}

export async function startWorld(env: Record<string, string> = {}): Promise<World> {
  const app = await startTestApp({ env });
  const marker = {
    acme: `ZqAcmeSecret${randomBytes(4).toString("hex")}`,
    globex: `ZqGlobexSecret${randomBytes(4).toString("hex")}`,
  };
  const acme = await provisionTenant(app, "acme");
  const globex = await provisionTenant(app, "globex");
  const template = "matrix.tpl";
  const basic: Record<string, string> = {};
  for (const [tenant, tokens] of [
    ["acme", acme],
    ["globex", globex],
  ] as const) {
    const m = marker[tenant];
    const admin = clientFor(AdminService, app, "connect", tokens.admin);
    await admin.createApiKey({ name: `${m}-key`, roles: [Role.READER] });
    await admin.createEventTemplate({
      template: { name: template, description: m, attributes: [{ name: "n", type: AttributeType.INTEGER }] },
    });
    await admin.createEventTemplate({ template: { name: `${m}.tpl`, description: m } });
    for (const role of tenant === "acme" ? [Role.READER, Role.WRITER, Role.ADMIN] : [Role.ADMIN]) {
      const username = `${Role[role].toLowerCase()}-user`;
      await admin.createUser({ username, password: PASSWORD, roles: [role] });
      basic[tenant === "acme" ? Role[role].toLowerCase() : "globexAdmin"] =
        `Basic ${Buffer.from(`${tenant}/${username}:${PASSWORD}`).toString("base64")}`;
    }
    const audit = clientFor(AuditService, app, "connect", tokens.writer);
    await audit.batchCreate({
      events: Array.from({ length: 3 }, (_, i) => ({
        action: `${m}.action`,
        actor: { id: `${i}`, name: `${m}-actor` },
        target: { id: m, type: "secret", name: m },
        attributes: { secret: m },
      })),
    });
  }
  // The display names carry the markers too (ListTenants, GetCaller).
  const sql = postgres(app.databaseUrl, { max: 2, onnotice: () => {} });
  await sql`update tenants set display_name = ${marker.acme} where id = 'acme'`;
  await sql`update tenants set display_name = ${marker.globex} where id = 'globex'`;
  return {
    app,
    acme,
    globex,
    sql,
    marker,
    basic: basic as World["basic"],
    template,
    wrongToken: `at_${randomBytes(32).toString("base64url")}`,
  };
}

export async function stopWorld(world: World | undefined): Promise<void> {
  await world?.sql.end();
  await world?.app.close();
}

/** The bearer token a caller presents; undefined for no credential. */
export function tokenOf(world: World, caller: Caller): string | undefined {
  switch (caller) {
    case "no credential":
      return undefined;
    case "wrong token":
      return world.wrongToken;
    case "other tenant's key":
      return world.globex.admin;
    case "reader":
      return world.acme.reader;
    case "writer":
      return world.acme.writer;
    case "admin":
      return world.acme.admin;
    case "superadmin":
      return world.app.adminToken;
  }
}

/** The roles and tenant behind a valid credential; undefined for none or a wrong one. */
export function identityOf(caller: Caller): { tenant: string; roles: Role[] } | undefined {
  switch (caller) {
    case "no credential":
    case "wrong token":
      return undefined;
    case "other tenant's key":
      return { tenant: "globex", roles: [Role.ADMIN] };
    case "reader":
      return { tenant: "acme", roles: [Role.READER] };
    case "writer":
      return { tenant: "acme", roles: [Role.WRITER] };
    case "admin":
      return { tenant: "acme", roles: [Role.ADMIN] };
    case "superadmin":
      return { tenant: "", roles: [Role.SUPERADMIN] };
  }
}

/** The marker of the data a caller must never see: the other tenant's, or both for a caller without a tenant. */
export function forbiddenMarkers(world: World, caller: Caller): string[] {
  const identity = identityOf(caller);
  if (!identity) return [world.marker.acme, world.marker.globex];
  if (identity.tenant === "") return [];
  return [identity.tenant === "acme" ? world.marker.globex : world.marker.acme];
}
