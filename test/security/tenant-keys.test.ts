import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { clientFor } from "../support/clients.js";
import { expectError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";

// An all-digit tenant key is a numeric tenant id, never a slug: such slugs are refused, and one stored by an older
// version cannot take another tenant's numeric id over on the routes that accept either form (Frontier's org_id).

let sql: postgres.Sql;

const given = appFixture({ tenants: ["acme"] });
beforeAll(async () => {
  sql = postgres(given.app.databaseUrl, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
});

const frontier = (org: string, token: string, action: string) =>
  fetch(`${given.app.url}/v1beta1/organizations/${org}/auditlogs`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ logs: [{ source: "s", action }] }),
  });

describe("all-digit tenant slugs", () => {
  test.each(["1", "007", String(Number.MAX_SAFE_INTEGER), "1".repeat(63)])(
    "CreateTenant refuses %s with the field and why",
    async (id) => {
      const admin = clientFor(AdminService, given.app, "connect", given.app.adminToken);
      const error = await expectError(admin.createTenant({ tenant: { id } }), {
        code: Code.InvalidArgument,
        reason: "INVALID_FIELD",
        fields: ["tenant.id"],
      });
      const violation = error.findDetails(BadRequestSchema)[0]?.fieldViolations[0];
      expect(violation?.field).toBe("tenant.id");
      expect(violation?.description).toContain("all digits");
      expect((await sql`select count(*)::int as n from tenants where id = ${id}`)[0]?.n).toBe(0);
    },
  );

  test("a slug with a digit and a letter is still fine", async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.app.adminToken);
    const { tenant } = await admin.createTenant({ tenant: { id: "1a" } });
    expect(tenant?.id).toBe("1a");
  });

  test("a stored all-digit slug does not shadow the tenant whose numeric id it spells", async () => {
    // As an older version could have stored it: tenant "1", created after acme, whose numeric id is 1.
    expect(given.acme.numericId).toBe(1n);
    const [stored] = await sql`insert into tenants (id, created_at) values ('1', now()) returning numeric_id`;
    const digitsNumber = String(stored?.numeric_id);
    expect(digitsNumber).not.toBe("1");
    const admin = clientFor(AdminService, given.app, "connect", given.app.adminToken);
    const { token: digitsWriter } = await admin.createApiKey({ tenant: "1", name: "w", roles: [Role.WRITER] });

    // org_id "1" is acme, by its numeric id: acme's key writes there, tenant "1"'s key is refused.
    expect((await frontier("1", given.acme.writer, "acme.by-number")).status).toBe(200);
    const refused = await frontier("1", digitsWriter, "digits.by-digits");
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("TENANT_MISMATCH");
    // Tenant "1" keeps every route: Frontier by its own numeric id, and its slug wherever a slug is asked for.
    expect((await frontier(digitsNumber, digitsWriter, "digits.by-number")).status).toBe(200);
    await clientFor(AuditService, given.app, "connect", digitsWriter).create({
      tenant: "1",
      event: { action: "digits.rpc" },
    });

    // The service's own records (tenants and keys created above) are not what this test is about.
    const rows =
      await sql`select tenant, action from events where category not like 'audit-trail.%' order by tenant, action`;
    expect(rows.map((r) => `${r.tenant} ${r.action}`)).toEqual([
      "1 digits.by-number",
      "1 digits.rpc",
      "acme acme.by-number",
    ]);
  });
});
