import { toJsonString } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, AttributeType, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService, type ListRequest, Order } from "../../gen/audit/v1/audit_service_pb.js";
import { type AuditEvent, AuditEventSchema, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, type Protocol, provisionTenant, type TenantTokens } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { expectError } from "../support/errors.js";

const clock = new ManualClock();
let app: TestApp;
let acme: TenantTokens;
/** Every secret the tests hand out or try: none may appear in any stored record. */
const secrets: string[] = [];

beforeAll(async () => {
  // Credential caching off, so a revoked key is refused at once.
  app = await startTestApp({ clock, env: { CREDENTIAL_CACHE_MS: "0" } });
  acme = await provisionTenant(app, "acme");
  secrets.push(acme.admin, acme.writer, acme.reader, acme.readerWriter, acme.noRole, app.adminToken);
});
afterAll(async () => {
  await app?.close();
});

type ListFilter = Partial<Pick<ListRequest, "actions" | "category" | "targetId">>;

const superadmin = () => clientFor(AdminService, app, "connect", app.adminToken);

/** Every event of a tenant matching the filter, oldest first, read through List by `token`'s owner. */
async function list(token: string, tenant: string, filter: ListFilter = {}): Promise<AuditEvent[]> {
  const audit = clientFor(AuditService, app, "connect", token);
  const { events } = await audit.list({ tenant, ...filter, pageSize: 1000, order: Order.OLDEST_FIRST });
  return events;
}

const json = (events: AuditEvent[]) => events.map((e) => toJsonString(AuditEventSchema, e)).join("\n");

describe("admin changes", () => {
  test('a compliance reviewer answers "who created this key, and when" with List', async () => {
    const admin = clientFor(AdminService, app, "grpc", acme.admin);
    const { credential, token } = await admin.createApiKey({ name: "billing", roles: [Role.WRITER] });
    secrets.push(token);
    const [record, ...more] = await list(acme.reader, "acme", {
      category: "audit-trail.admin",
      actions: ["credential.create"],
      targetId: credential?.id ?? "",
    });
    expect(more).toEqual([]);
    expect(record?.tenant).toBe("acme");
    expect(record?.source).toBe("audit-trail");
    // Who: the admin key that called CreateApiKey; when: the key's own create time.
    const adminKey = (await admin.listCredentials({})).credentials.find((c) => c.name === "admin");
    expect(record?.actor).toMatchObject({ id: adminKey?.id, type: "api_key", name: "admin", roles: ["admin"] });
    expect(record?.occurredAt).toEqual(credential?.createTime);
    expect(record?.target).toMatchObject({ type: "api_key", id: credential?.id, name: "billing" });
    expect(record?.outcome?.status).toBe(OutcomeStatus.SUCCESS);
    expect(record?.attributes).toEqual({ roles: ["writer"] });
  });

  test("tenant, key, user, template and revocation are each recorded, in order, where they belong", async () => {
    const admin = clientFor(AdminService, app, "connect", acme.admin);
    const { credential: user } = await admin.createUser({
      username: "ann",
      password: "correct horse battery",
      roles: [Role.READER],
    });
    secrets.push("correct horse battery");
    await admin.createEventTemplate({
      template: { name: "door.open", attributes: [{ name: "door", type: AttributeType.STRING, required: true }] },
    });
    await admin.deleteEventTemplate({ name: "door.open" });
    await admin.revokeCredential({ id: user?.id ?? "" });

    // The tenant's own admins' changes are in the tenant's log.
    const records = await list(acme.reader, "acme", { category: "audit-trail.admin" });
    expect(records.map((e) => `${e.action} ${e.target?.type} ${e.target?.name || e.target?.id}`)).toEqual([
      "credential.create api_key billing",
      "user.create user ann",
      "template.create event_template door.open",
      "template.delete event_template door.open",
      "credential.revoke user ann",
    ]);
    expect(new Set(records.map((e) => e.actor?.name))).toEqual(new Set(["admin"]));
    expect(records.at(-1)?.target?.id).toBe(user?.id);
    // The operator's (a global credential's) are global operations: in the system tenant, naming the tenant.
    const global = await list(app.adminToken, "_system", { category: "audit-trail.admin" });
    expect(
      global.map((e) => `${e.action} ${e.target?.type} ${e.target?.name} ${e.attributes?.tenant} ${e.actor?.id}`),
    ).toEqual([
      "tenant.create tenant ACME acme bootstrap-admin",
      ...["admin", "writer", "reader", "reader-writer", "no-role"].map(
        (n) => `credential.create api_key ${n} acme bootstrap-admin`,
      ),
    ]);
    expect(global[0]?.actor?.roles).toEqual(["superadmin"]);
  });
});

describe("the tenant's own listing", () => {
  test("leaves the service's records out unless the filter names their category; clients cannot write them", async () => {
    const writer = clientFor(AuditService, app, "connect", acme.writer);
    const { event } = await writer.create({ event: { action: "invoice.pay", category: "billing" } });
    expect((await list(acme.reader, "acme")).map((e) => e.id)).toEqual([event?.id]);
    expect((await list(acme.reader, "acme", { category: "audit-trail.admin" })).length).toBeGreaterThan(0);
    await expectError(writer.create({ event: { action: "credential.create", category: "audit-trail.admin" } }), {
      code: Code.InvalidArgument,
      fields: ["event.category"],
    });
    await expectError(
      writer.batchCreate({ events: [{ action: "a" }, { action: "login.fail", category: "audit-trail.security" }] }),
      { code: Code.InvalidArgument, fields: ["events[1].category"] },
    );
  });
});

describe("refused credentials", () => {
  test("a failed login is recorded in the tenant named, with the user tried and never the password", async () => {
    const admin = clientFor(AdminService, app, "connect");
    await expectError(admin.login({ tenant: "acme", username: "ann", password: "wrong password 1" }), {
      code: Code.Unauthenticated,
      reason: "INVALID_PASSWORD",
    });
    secrets.push("wrong password 1");
    const [fail] = await list(acme.reader, "acme", { category: "audit-trail.security", actions: ["login.fail"] });
    expect(fail).toMatchObject({
      category: "audit-trail.security",
      actor: { type: "anonymous" },
      target: { type: "user", name: "ann" },
      outcome: { status: OutcomeStatus.FAILURE, code: "INVALID_PASSWORD" },
      attributes: { procedure: "audit.v1.AdminService/Login" },
    });
  });

  test("a revoked key, used on any route, is recorded in its own tenant naming the key", async () => {
    const admin = clientFor(AdminService, app, "connect", acme.admin);
    const { credential, token } = await admin.createApiKey({ name: "leaked", roles: [Role.WRITER] });
    secrets.push(token);
    await admin.revokeCredential({ id: credential?.id ?? "" });
    // No tenant named in the request: the credential itself says whose it is.
    await expectError(clientFor(AuditService, app, "grpc", token).create({ event: { action: "x" } }), {
      code: Code.Unauthenticated,
      reason: "CREDENTIAL_REVOKED",
    });
    const axonize = await fetch(`${app.url}/odata/Audits`, {
      method: "POST",
      headers: { authorization: token, "content-type": "application/json" },
      body: JSON.stringify({ entityName: "Boiler", entityId: "b-1", action: "Put" }),
    });
    expect(axonize.status).toBe(401);
    const refused = await list(acme.reader, "acme", {
      category: "audit-trail.security",
      actions: ["credential.refused"],
      targetId: credential?.id ?? "",
    });
    // The Axonize route authenticates for Create before it reads the body.
    expect(refused.map((e) => [e.target?.type, e.target?.name, e.outcome?.code, e.attributes?.procedure])).toEqual([
      ["api_key", "leaked", "CREDENTIAL_REVOKED", "audit.v1.AuditService/Create"],
      ["api_key", "leaked", "CREDENTIAL_REVOKED", "audit.v1.AuditService/Create"],
    ]);
  });

  test.each<Protocol>(["connect", "grpc-web", "grpc"])(
    "an unknown token over %s, naming no tenant, is recorded in the system tenant",
    async (protocol) => {
      const bad = `at_unknown_${protocol}_0123456789`;
      secrets.push(bad);
      await expectError(clientFor(AuditService, app, protocol, bad).list({}), {
        code: Code.Unauthenticated,
        reason: "INVALID_TOKEN",
      });
      const records = await list(app.adminToken, "_system", {
        category: "audit-trail.security",
        actions: ["credential.refused"],
      });
      expect(records.at(-1)).toMatchObject({
        tenant: "_system",
        category: "audit-trail.security",
        target: { type: "credential", id: "", name: "" },
        outcome: { code: "INVALID_TOKEN" },
        attributes: { procedure: "audit.v1.AuditService/List" },
      });
    },
  );

  test("Basic credentials refused over REST are recorded in the tenant of tenant/user", async () => {
    const before = (
      await list(acme.reader, "acme", { category: "audit-trail.security", actions: ["credential.refused"] })
    ).length;
    const response = await fetch(`${app.url}/v1/tenants/acme/events`, {
      headers: { authorization: `Basic ${Buffer.from("acme/ann:wrong password 2").toString("base64")}` },
    });
    secrets.push("wrong password 2");
    expect(response.status).toBe(401);
    const refused = await list(acme.reader, "acme", {
      category: "audit-trail.security",
      actions: ["credential.refused"],
    });
    expect(refused.length).toBe(before + 1);
    expect(refused.at(-1)?.target).toMatchObject({ type: "credential", name: "ann" });
    expect(refused.at(-1)?.outcome?.code).toBe("INVALID_PASSWORD");
  });

  test("a flood is bounded: 20 records a minute per tenant, then one summary of the rest", async () => {
    await superadmin().createTenant({ tenant: { id: "flooded" } });
    const reader = (await superadmin().createApiKey({ tenant: "flooded", name: "r", roles: [Role.READER] })).token;
    const anonymous = clientFor(AuditService, app, "connect", "at_flood_not_a_token");
    for (let i = 0; i < 50; i++) {
      await expectError(anonymous.list({ tenant: "flooded" }), { code: Code.Unauthenticated });
    }
    const security = { category: "audit-trail.security" };
    expect((await list(reader, "flooded", security)).length).toBe(20);

    // The next refusal after the minute writes the summary of the 30 held back, then is recorded itself.
    clock.advanceHours(1 / 60);
    await expectError(anonymous.list({ tenant: "flooded" }), { code: Code.Unauthenticated });
    const records = await list(reader, "flooded", security);
    expect(records.map((e) => e.action).slice(19)).toEqual([
      "credential.refused",
      "refusals.suppressed",
      "credential.refused",
    ]);
    expect(records[20]?.attributes).toMatchObject({
      total: 30,
      suppressed: { "credential.refused": { INVALID_TOKEN: 30 } },
    });
  });
});

describe("the system tenant", () => {
  test("only superadmins read it, nobody writes to it, and no tenant can be created with its slug", async () => {
    await expectError(clientFor(AuditService, app, "connect", acme.admin).list({ tenant: "_system" }), {
      code: Code.PermissionDenied,
    });
    await expectError(
      clientFor(AuditService, app, "connect", app.adminToken).create({ tenant: "_system", event: { action: "x" } }),
      { code: Code.PermissionDenied, reason: "INSUFFICIENT_ROLE" },
    );
    await expectError(superadmin().createApiKey({ tenant: "_system", name: "k", roles: [Role.READER] }), {
      code: Code.PermissionDenied,
    });
    await expectError(superadmin().createTenant({ tenant: { id: "_system" } }), {
      code: Code.InvalidArgument,
      fields: ["tenant.id"],
    });
    expect((await superadmin().listTenants({})).tenants.map((t) => t.id)).not.toContain("_system");
  });

  test("no record holds a secret: no token or password handed out or tried", async () => {
    const records: AuditEvent[] = [];
    for (const tenant of ["acme", "_system", "flooded"]) {
      for (const category of ["audit-trail.admin", "audit-trail.security"]) {
        records.push(...(await list(app.adminToken, tenant, { category })));
      }
    }
    const all = json(records);
    expect(all.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(all).not.toContain(secret);
  });
});

describe("when the record cannot be stored", () => {
  test("the call fails and the service logs it, though the change was made", async () => {
    const broken = await startTestApp();
    try {
      const tokens = await provisionTenant(broken, "acme");
      // Break the events table under the running service: the change commits, its record cannot.
      const sql = postgres(broken.databaseUrl, { max: 1, onnotice: () => {} });
      await sql`alter table events rename column source to source_renamed`;
      await sql.end();
      const admin = clientFor(AdminService, broken, "connect", tokens.admin);
      await expectError(admin.createApiKey({ name: "unrecorded", roles: [Role.READER] }), { code: Code.Internal });
      const keys = (await admin.listCredentials({})).credentials.map((c) => c.name);
      expect(keys).toContain("unrecorded");
      const line = broken.logs.find((l) => l.includes("self-audit record not stored"));
      expect(line).toBeDefined();
      expect(JSON.parse(line ?? "{}")).toMatchObject({ level: 50, tenant: "acme", action: "credential.create" });
    } finally {
      await broken.close();
    }
  });
});
