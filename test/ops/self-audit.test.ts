import { toJson, toJsonString } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { beforeAll, describe, expect, test } from "vitest";
import { AdminService, AttributeType, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService, type ListRequest, Order } from "../../gen/audit/v1/audit_service_pb.js";
import { type AuditEvent, AuditEventSchema, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, type Protocol, provisionTenant } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { createTestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";

const clock = new ManualClock();
/** Every secret the tests hand out or try: none may appear in any stored record. */
const secrets: string[] = [];

// Credential caching off, so a revoked key is refused at once.
const given = appFixture({ clock, env: { CREDENTIAL_CACHE_MS: "0" }, tenants: ["acme"] });
beforeAll(async () => {
  secrets.push(
    given.acme.admin,
    given.acme.writer,
    given.acme.reader,
    given.acme.readerWriter,
    given.acme.noRole,
    given.app.adminToken,
  );
});

type ListFilter = Partial<Pick<ListRequest, "actions" | "category" | "targetId">>;

const superadmin = () => clientFor(AdminService, given.app, "connect", given.app.adminToken);

/** Every event of a tenant matching the filter, oldest first, read through List by `token`'s owner. */
async function list(
  token: string,
  tenant: string,
  filter: ListFilter = {},
  at: TestApp = given.app,
): Promise<AuditEvent[]> {
  const audit = clientFor(AuditService, at, "connect", token);
  const { events } = await audit.list({ tenant, ...filter, pageSize: 1000, order: Order.OLDEST_FIRST });
  return events;
}

const json = (events: AuditEvent[]) => events.map((e) => toJsonString(AuditEventSchema, e)).join("\n");

describe("admin changes", () => {
  test('a compliance reviewer answers "who created this key, and when" with List', async () => {
    const admin = clientFor(AdminService, given.app, "grpc", given.acme.admin);
    const { credential, token } = await admin.createApiKey({ name: "billing", roles: [Role.WRITER] });
    secrets.push(token);
    const [record, ...more] = await list(given.acme.reader, "acme", {
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

  test("for a key the operator created, the tenant's reviewer finds the operator, over REST too", async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
    const writer = (await admin.listCredentials({})).credentials.find((c) => c.name === "writer");
    const query = new URLSearchParams({
      category: "audit-trail.admin",
      actions: "credential.create",
      targetId: writer?.id ?? "",
    });
    const response = await fetch(`${given.app.url}/v1/tenants/acme/events?${query}`, {
      headers: { authorization: `Bearer ${given.acme.reader}` },
    });
    expect(response.status).toBe(200);
    const { events } = (await response.json()) as { events: Record<string, unknown>[] };
    expect(events).toHaveLength(1);
    // Who: the operator's global superadmin credential; when: the key's own create time.
    expect(events[0]).toMatchObject({
      tenant: "acme",
      action: "credential.create",
      actor: { id: "bootstrap-admin", type: "api_key", roles: ["superadmin"] },
      target: { type: "api_key", id: writer?.id, name: "writer" },
      attributes: { roles: ["writer"] },
    });
    expect(events[0]?.occurredAt).toBe(writer?.createTime && toJson(TimestampSchema, writer.createTime));
  });

  test("tenant, key, user, template and revocation are each recorded, in order, in the tenant concerned", async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
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

    // The tenant's log holds every change to it, its birth first, whoever made it: the operator, then its admins.
    const records = await list(given.acme.reader, "acme", { category: "audit-trail.admin" });
    const line = (e: AuditEvent) => `${e.actor?.id} ${e.action} ${e.target?.type} ${e.target?.name || e.target?.id}`;
    const adminId = (await admin.listCredentials({})).credentials.find((c) => c.name === "admin")?.id;
    expect(records.map(line)).toEqual([
      "bootstrap-admin tenant.create tenant ACME",
      ...["admin", "writer", "reader", "reader-writer", "no-role"].map(
        (n) => `bootstrap-admin credential.create api_key ${n}`,
      ),
      `${adminId} credential.create api_key billing`,
      `${adminId} user.create user ann`,
      `${adminId} template.create event_template door.open`,
      `${adminId} template.delete event_template door.open`,
      `${adminId} credential.revoke user ann`,
    ]);
    expect(records[0]?.actor).toMatchObject({ type: "api_key", roles: ["superadmin"] });
    expect(records.at(-1)?.target?.id).toBe(user?.id);
  });

  test("changes to the global credential, by the operator or at start, are global operations in the system tenant", async () => {
    const database = await createTestDatabase();
    try {
      const first = await startTestApp({ clock, database });
      const operator = clientFor(AdminService, first, "connect", first.adminToken);
      await operator.createTenant({ tenant: { id: "globex" } });
      // The operator retires its own global credential: no tenant is concerned.
      await operator.revokeCredential({ id: "bootstrap-admin" });
      await first.close();
      // The next start, with a new AUDIT_ADMIN_TOKEN, brings the credential back; one more with the same token
      // changes nothing and records nothing.
      const rotated = await startTestApp({ clock, database });
      await rotated.close();
      const second = await startTestApp({ clock, database, env: { AUDIT_ADMIN_TOKEN: rotated.adminToken } });
      try {
        const global = await list(second.adminToken, "_system", { category: "audit-trail.admin" }, second);
        // The service's own changes at start (installing each AUDIT_ADMIN_TOKEN) are global operations too.
        expect(global.map((e) => `${e.actor?.type} ${e.actor?.id} ${e.action} ${e.target?.id}`)).toEqual([
          "system audit-trail credential.create bootstrap-admin",
          "api_key bootstrap-admin credential.revoke bootstrap-admin",
          "system audit-trail credential.create bootstrap-admin",
        ]);
        expect(global[0]?.target).toMatchObject({ type: "api_key", name: "AUDIT_ADMIN_TOKEN" });
        expect(global[0]?.attributes).toEqual({ roles: ["superadmin"] });
        const tenant = await list(second.adminToken, "globex", { category: "audit-trail.admin" }, second);
        expect(tenant.map((e) => `${e.actor?.id} ${e.action} ${e.target?.id}`)).toEqual([
          "bootstrap-admin tenant.create globex",
        ]);
      } finally {
        await second.close();
      }
    } finally {
      await database.drop();
    }
  });
});

describe("the tenant's own listing", () => {
  test("leaves the service's records out unless the filter names their category; clients cannot write them", async () => {
    const writer = clientFor(AuditService, given.app, "connect", given.acme.writer);
    const { event } = await writer.create({ event: { action: "invoice.pay", category: "billing" } });
    expect((await list(given.acme.reader, "acme")).map((e) => e.id)).toEqual([event?.id]);
    expect((await list(given.acme.reader, "acme", { category: "audit-trail.admin" })).length).toBeGreaterThan(0);
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
    const admin = clientFor(AdminService, given.app, "connect");
    await expectError(admin.login({ tenant: "acme", username: "ann", password: "wrong password 1" }), {
      code: Code.Unauthenticated,
      reason: "INVALID_PASSWORD",
    });
    secrets.push("wrong password 1");
    const [fail] = await list(given.acme.reader, "acme", { category: "audit-trail.security", actions: ["login.fail"] });
    expect(fail).toMatchObject({
      category: "audit-trail.security",
      actor: { type: "anonymous" },
      target: { type: "user", name: "ann" },
      outcome: { status: OutcomeStatus.FAILURE, code: "INVALID_PASSWORD" },
      attributes: { procedure: "audit.v1.AdminService/Login" },
    });
  });

  test("a revoked key, used on any route, is recorded in its own tenant naming the key", async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
    const { credential, token } = await admin.createApiKey({ name: "leaked", roles: [Role.WRITER] });
    secrets.push(token);
    await admin.revokeCredential({ id: credential?.id ?? "" });
    // No tenant named in the request: the credential itself says whose it is.
    await expectError(clientFor(AuditService, given.app, "grpc", token).create({ event: { action: "x" } }), {
      code: Code.Unauthenticated,
      reason: "CREDENTIAL_REVOKED",
    });
    const axonize = await fetch(`${given.app.url}/odata/Audits`, {
      method: "POST",
      headers: { authorization: token, "content-type": "application/json" },
      body: JSON.stringify({ entityName: "Boiler", entityId: "b-1", action: "Put" }),
    });
    expect(axonize.status).toBe(401);
    const refused = await list(given.acme.reader, "acme", {
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
      await expectError(clientFor(AuditService, given.app, protocol, bad).list({}), {
        code: Code.Unauthenticated,
        reason: "INVALID_TOKEN",
      });
      const records = await list(given.app.adminToken, "_system", {
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
      await list(given.acme.reader, "acme", { category: "audit-trail.security", actions: ["credential.refused"] })
    ).length;
    const response = await fetch(`${given.app.url}/v1/tenants/acme/events`, {
      headers: { authorization: `Basic ${Buffer.from("acme/ann:wrong password 2").toString("base64")}` },
    });
    secrets.push("wrong password 2");
    expect(response.status).toBe(401);
    const refused = await list(given.acme.reader, "acme", {
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
    const anonymous = clientFor(AuditService, given.app, "connect", "at_flood_not_a_token");
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
    await expectError(clientFor(AuditService, given.app, "connect", given.acme.admin).list({ tenant: "_system" }), {
      code: Code.PermissionDenied,
    });
    await expectError(
      clientFor(AuditService, given.app, "connect", given.app.adminToken).create({
        tenant: "_system",
        event: { action: "x" },
      }),
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
        records.push(...(await list(given.app.adminToken, tenant, { category })));
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
