import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, CredentialKind, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService, ListRequestSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { clientFor, type Protocol } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { expectError } from "../support/errors.js";
import { expectAll } from "../support/expect-all.js";
import { appFixture } from "../support/fixture.js";

// Sessions and expiry need a clock the test moves; credential caching is off so every call re-reads.
const clock = new ManualClock();
let sql: postgres.Sql;

const given = appFixture({ clock, env: { CREDENTIAL_CACHE_MS: "0" }, tenants: ["acme", "globex"] });
beforeAll(async () => {
  sql = postgres(given.app.databaseUrl, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
});

const countEvents = async (tenant: string) =>
  Number((await sql`select count(*)::int as n from events where tenant = ${tenant}`)[0]?.n);

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe.each<Protocol>(["connect", "grpc-web", "grpc"])("over %s", (protocol) => {
  const audit = (token?: string) => clientFor(AuditService, given.app, protocol, token);
  const event = { action: "auth.check" };

  test("no credential is UNAUTHENTICATED", async () => {
    await expectError(audit().create({ event }), { code: Code.Unauthenticated, reason: "MISSING_CREDENTIAL" });
  });

  test("a wrong token is UNAUTHENTICATED", async () => {
    await expectError(audit("at_not-a-real-token").list({}), { code: Code.Unauthenticated, reason: "INVALID_TOKEN" });
  });

  test("a revoked key is refused; the revoke is immediate on this instance", async () => {
    const admin = clientFor(AdminService, given.app, protocol, given.acme.admin);
    const { credential, token } = await admin.createApiKey({ name: `doomed-${protocol}`, roles: [Role.WRITER] });
    await audit(token).create({ event });
    await admin.revokeCredential({ id: credential?.id ?? "" });
    await expectError(audit(token).create({ event }), { code: Code.Unauthenticated, reason: "CREDENTIAL_REVOKED" });
  });

  test("an expired key is refused", async () => {
    const admin = clientFor(AdminService, given.app, protocol, given.acme.admin);
    const expireTime = timestampFromMs(Number(clock.nowMicros() / 1000n) + 3_600_000);
    const { token } = await admin.createApiKey({ name: `short-${protocol}`, roles: [Role.READER], expireTime });
    await audit(token).list({});
    clock.advanceHours(1.01);
    await expectError(audit(token).list({}), { code: Code.Unauthenticated, reason: "CREDENTIAL_EXPIRED" });
  });

  test("a reader cannot Create and a writer cannot List", async () => {
    const before = await countEvents("acme");
    await expectError(audit(given.acme.reader).create({ event }), {
      code: Code.PermissionDenied,
      reason: "INSUFFICIENT_ROLE",
    });
    await expectError(audit(given.acme.writer).list({}), { code: Code.PermissionDenied, reason: "INSUFFICIENT_ROLE" });
    expect(await countEvents("acme")).toBe(before);
  });

  test("a credential without roles authenticates but is refused every RPC", async () => {
    await expectError(audit(given.acme.noRole).create({ event }), { code: Code.PermissionDenied, reason: "NO_ROLE" });
    await expectError(audit(given.acme.noRole).list({}), { code: Code.PermissionDenied, reason: "NO_ROLE" });
    const caller = await clientFor(AdminService, given.app, protocol, given.acme.noRole).getCaller({});
    expect(caller.credential?.roles).toEqual([]);
  });

  test("tenant A's key cannot write or read tenant B, and nothing is written", async () => {
    const before = await countEvents("globex");
    await expectError(audit(given.acme.readerWriter).create({ tenant: "globex", event }), {
      code: Code.PermissionDenied,
      reason: "TENANT_MISMATCH",
    });
    await expectError(audit(given.acme.readerWriter).list({ tenant: "globex" }), {
      code: Code.PermissionDenied,
      reason: "TENANT_MISMATCH",
    });
    await expectError(audit(given.acme.readerWriter).batchCreate({ tenant: "globex", events: [event] }), {
      code: Code.PermissionDenied,
      reason: "TENANT_MISMATCH",
    });
    expect(await countEvents("globex")).toBe(before);
  });

  test("an empty tenant means the caller's own", async () => {
    const { event: stored } = await audit(given.globex.readerWriter).create({ event: { action: `own.${protocol}` } });
    expect(stored?.tenant).toBe("globex");
  });

  test("the superadmin reaches every tenant, but must name one", async () => {
    const admin = audit(given.app.adminToken);
    const { event: stored } = await admin.create({ tenant: "globex", event: { action: `super.${protocol}` } });
    expect(stored?.tenant).toBe("globex");
    const { events } = await admin.list({ tenant: "acme" });
    expectAll(events, (e) => e.tenant === "acme", "events");
    await expectError(admin.list({}), { code: Code.InvalidArgument, reason: "MISSING_FIELD", fields: ["tenant"] });
    await expectError(admin.list({ tenant: "nope" }), { code: Code.NotFound, reason: "TENANT_NOT_FOUND" });
  });
});

describe("users and HTTP Basic", () => {
  beforeAll(async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
    await admin.createUser({ username: "alice", password: "correct horse", roles: [Role.READER, Role.WRITER] });
  });

  test("Basic auth with tenant/username works on every protocol", async () => {
    for (const protocol of ["connect", "grpc-web", "grpc"] as const) {
      const client = clientFor(AuditService, given.app, protocol);
      const headers = { authorization: basic("acme/alice", "correct horse") };
      const { event } = await client.create({ event: { action: `basic.${protocol}` } }, { headers });
      expect(event?.tenant).toBe("acme");
    }
  });

  test("Basic auth takes the tenant from the request when the user name has none", async () => {
    const client = clientFor(AuditService, given.app, "connect");
    const { events } = await client.list(create(ListRequestSchema, { tenant: "acme", actions: ["basic.*"] }), {
      headers: { authorization: basic("alice", "correct horse") },
    });
    expect(events.length).toBeGreaterThan(0);
    await expectError(client.list({}, { headers: { authorization: basic("alice", "correct horse") } }), {
      code: Code.Unauthenticated,
      reason: "MALFORMED_AUTHORIZATION",
    });
  });

  test("a wrong password, or an unknown user, is UNAUTHENTICATED", async () => {
    const client = clientFor(AuditService, given.app, "grpc");
    for (const authorization of [basic("acme/alice", "wrong horse"), basic("acme/mallory", "correct horse")]) {
      await expectError(client.list({}, { headers: { authorization } }), {
        code: Code.Unauthenticated,
        reason: "INVALID_PASSWORD",
      });
    }
  });

  test("a bare token (Axonize style) is accepted", async () => {
    const { event } = await clientFor(AuditService, given.app, "connect", given.acme.writer).create({
      event: { action: "bare.token.visible" },
    });
    const client = clientFor(AuditService, given.app, "connect");
    const { events } = await client.list(
      { actions: ["bare.token.visible"] },
      { headers: { authorization: given.acme.reader } },
    );
    expect(events.map((e) => e.id)).toContain(event?.id);
  });

  test("an admin cannot mint a superadmin key, nor a duplicate user", async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
    await expectError(admin.createApiKey({ name: "escalate", roles: [Role.SUPERADMIN] }), {
      code: Code.InvalidArgument,
      fields: ["roles[0]"],
    });
    await expectError(admin.createUser({ username: "alice", password: "another password", roles: [] }), {
      code: Code.AlreadyExists,
      reason: "USER_EXISTS",
    });
  });
});

// Sessions live for days: their own service and clock, so moving it weeks ahead touches no other test.
describe("sessions", () => {
  const sessionClock = new ManualClock();
  const admin = () => clientFor(AdminService, sessionsApp.app, "connect");
  const sessionsApp = appFixture({ clock: sessionClock, env: { CREDENTIAL_CACHE_MS: "0" }, tenants: ["acme"] });
  beforeAll(async () => {
    await clientFor(AdminService, sessionsApp.app, "connect", sessionsApp.acme.admin).createUser({
      username: "bob",
      password: "bob's password",
      roles: [Role.READER],
    });
  });

  test("Login needs no credential, and a wrong password fails", async () => {
    await expectError(admin().login({ tenant: "acme", username: "bob", password: "nope nope" }), {
      code: Code.Unauthenticated,
      reason: "INVALID_PASSWORD",
    });
    const { token, session } = await admin().login({ tenant: "acme", username: "bob", password: "bob's password" });
    expect(token).toMatch(/^ats_/);
    expect(session?.kind).toBe(CredentialKind.SESSION);
    await clientFor(AuditService, sessionsApp.app, "grpc", token).list({});
  });

  test("a session expires after 72 hours unused", async () => {
    const { token } = await admin().login({ tenant: "acme", username: "bob", password: "bob's password" });
    const client = clientFor(AuditService, sessionsApp.app, "grpc-web", token);
    sessionClock.advanceHours(71);
    await client.list({});
    sessionClock.advanceHours(71); // refreshed by the last use: still alive
    await client.list({});
    sessionClock.advanceHours(72.1);
    await expectError(client.list({}), { code: Code.Unauthenticated, reason: "SESSION_EXPIRED" });
  });

  test("a session expires 7 days after login however often it is used", async () => {
    const { token } = await admin().login({ tenant: "acme", username: "bob", password: "bob's password" });
    const client = clientFor(AuditService, sessionsApp.app, "connect", token);
    for (let day = 0; day < 6; day++) {
      sessionClock.advanceHours(24);
      await client.list({});
    }
    sessionClock.advanceHours(23.9);
    await client.list({});
    sessionClock.advanceHours(0.2);
    await expectError(client.list({}), { code: Code.Unauthenticated, reason: "SESSION_EXPIRED" });
  });

  test("a remember_me session does not expire", async () => {
    const { token, session } = await admin().login({
      tenant: "acme",
      username: "bob",
      password: "bob's password",
      rememberMe: true,
    });
    expect(session?.expireTime).toBeUndefined();
    sessionClock.advanceHours(24 * 30);
    await clientFor(AuditService, sessionsApp.app, "grpc", token).list({});
  });
});

describe("secrets", () => {
  test("only hashes are stored, and no secret reaches the logs", async () => {
    const tokens = [
      given.app.adminToken,
      given.acme.admin,
      given.acme.writer,
      given.acme.reader,
      "correct horse",
      "bob's password",
    ];
    const rows = await sql`select encode(secret_hash, 'escape') as h, name, token_prefix from credentials`;
    const dump = JSON.stringify(rows);
    for (const secret of tokens) expect(dump.includes(secret)).toBe(false);
    const logs = given.app.logs.join("\n");
    for (const secret of tokens) expect(logs.includes(secret)).toBe(false);
    expect(logs).toContain("authentication failed");
  });

  test("ListCredentials describes credentials without their secrets", async () => {
    const { credentials } = await clientFor(AdminService, given.app, "connect", given.acme.admin).listCredentials({});
    expect(credentials.length).toBeGreaterThan(4);
    const text = JSON.stringify(credentials, (_k, v) => (typeof v === "bigint" ? String(v) : v));
    for (const secret of [given.acme.admin, given.acme.writer, given.acme.reader])
      expect(text.includes(secret)).toBe(false);
    expectAll(credentials, (c) => c.tenant === "acme", "credentials");
  });
});
