import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, CredentialKind, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, protocols, provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";

// docs/auth.md and docs/errors.md: revoking a user revokes every session issued to it (CREDENTIAL_REVOKED), on this
// instance at once and on others within CREDENTIAL_CACHE_MS; Universal Controller tells a revoked user so
// (docs/legacy.md: "Invalid credentials. The user has been revoked."); and the identity RPCs' own refusals,
// TENANT_EXISTS and CREDENTIAL_NOT_FOUND.

const PASSWORD = "correct horse battery staple";
const basic = (tenant: string, user: string) =>
  `Basic ${Buffer.from(`${tenant}/${user}:${PASSWORD}`).toString("base64")}`;

describe("on one instance", () => {
  const given = appFixture({ tenants: ["acme"] });

  const admin = () => clientFor(AdminService, given.app, "connect", given.acme.admin);
  const login = async (username: string) =>
    (await clientFor(AdminService, given.app, "connect").login({ tenant: "acme", username, password: PASSWORD })).token;

  test("revoking a user revokes each of its sessions, on every protocol, and no one else's", async () => {
    const { credential: ann } = await admin().createUser({
      tenant: "acme",
      username: "ann",
      password: PASSWORD,
      roles: [Role.READER],
    });
    await admin().createUser({ tenant: "acme", username: "bob", password: PASSWORD, roles: [Role.READER] });
    const sessions = [await login("ann"), await login("ann")];
    const bobSession = await login("bob");
    // Positive control: every session works before, over every protocol (and is now cached).
    for (const token of [...sessions, bobSession])
      for (const protocol of protocols) await clientFor(AuditService, given.app, protocol, token).list({});

    const { credential: revoked } = await admin().revokeCredential({ tenant: "acme", id: ann?.id ?? "" });
    expect(revoked?.revokeTime).toBeDefined();

    for (const token of sessions) {
      for (const protocol of protocols) {
        await expectError(clientFor(AuditService, given.app, protocol, token).list({}), {
          code: Code.Unauthenticated,
          reason: "CREDENTIAL_REVOKED",
        });
      }
    }
    // The sessions are listed as revoked; the user cannot log in again; bob is untouched.
    const { credentials } = await admin().listCredentials({ tenant: "acme" });
    const annSessions = credentials.filter((c) => c.kind === CredentialKind.SESSION && c.name === "ann");
    expect(annSessions.length).toBe(2);
    for (const s of annSessions) expect(s.revokeTime, s.id).toBeDefined();
    await expectError(
      clientFor(AdminService, given.app, "connect").login({ tenant: "acme", username: "ann", password: PASSWORD }),
      { code: Code.Unauthenticated, reason: "CREDENTIAL_REVOKED" },
    );
    await clientFor(AuditService, given.app, "grpc", bobSession).list({});
  });

  test("Universal Controller answers a revoked user 401 'Invalid credentials. The user has been revoked.'", async () => {
    const { credential } = await admin().createUser({
      tenant: "acme",
      username: "ops.viewer",
      password: PASSWORD,
      roles: [Role.READER],
    });
    const list = () =>
      fetch(`${given.app.url}/uc/resources/audit/list`, {
        method: "POST",
        headers: { authorization: basic("acme", "ops.viewer"), "content-type": "application/json" },
        body: "{}",
      });
    // Positive control: the same request before the revocation is served.
    expect((await list()).status).toBe(200);
    await admin().revokeCredential({ tenant: "acme", id: credential?.id ?? "" });
    const res = await list();
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="Universal Controller"/);
    expect(await res.text()).toBe("Invalid credentials. The user has been revoked.");
  });

  test("CreateTenant with a taken slug: ALREADY_EXISTS TENANT_EXISTS (409 on REST), nothing changed", async () => {
    const superadmin = clientFor(AdminService, given.app, "grpc", given.app.adminToken);
    await expectError(superadmin.createTenant({ tenant: { id: "acme", displayName: "Another Acme" } }), {
      code: Code.AlreadyExists,
      reason: "TENANT_EXISTS",
    });
    const rest = await fetch(`${given.app.url}/v1/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${given.app.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ tenant: { id: "acme", displayName: "Another Acme" } }),
    });
    expect(rest.status).toBe(409);
    expect(((await rest.json()) as { details: { reason: string }[] }).details[0]?.reason).toBe("TENANT_EXISTS");
    const { tenants } = await superadmin.listTenants({});
    expect(tenants.filter((t) => t.id === "acme").map((t) => t.displayName)).toEqual(["ACME"]);
  });

  test("RevokeCredential of an unknown id, or of another tenant's: NOT_FOUND CREDENTIAL_NOT_FOUND, alike", async () => {
    const globex = await provisionTenant(given.app, "globex");
    const { credentials } = await clientFor(AdminService, given.app, "connect", globex.admin).listCredentials({
      tenant: "globex",
    });
    const globexKey = credentials[0]?.id ?? "";
    expect(globexKey).not.toBe("");
    const unknown = credentials[0]?.id.replace(/[0-9a-f]/g, "0") ?? "";
    for (const id of [unknown, globexKey]) {
      const error = await expectError(admin().revokeCredential({ tenant: "acme", id }), {
        code: Code.NotFound,
        reason: "CREDENTIAL_NOT_FOUND",
      });
      expect(error.rawMessage).toBe(`credential "${id}" not found`);
    }
    // Globex's key was not touched.
    await clientFor(AdminService, given.app, "connect", globex.admin).getCaller({});
  });
});

describe("CREDENTIAL_CACHE_MS across two instances on one database", () => {
  const CACHE_MS = 4000;
  let database: TestDatabase;
  let a: TestApp;
  let cached: TestApp;
  let uncached: TestApp;
  beforeAll(async () => {
    database = await createTestDatabase();
    // One superadmin token for all three: a different one would rotate (revoke) the others'.
    const adminToken = `at_test_${randomBytes(24).toString("base64url")}`;
    a = await startTestApp({ database, env: { AUDIT_ADMIN_TOKEN: adminToken } });
    cached = await startTestApp({
      database,
      env: { AUDIT_ADMIN_TOKEN: adminToken, CREDENTIAL_CACHE_MS: String(CACHE_MS) },
    });
    uncached = await startTestApp({ database, env: { AUDIT_ADMIN_TOKEN: adminToken, CREDENTIAL_CACHE_MS: "0" } });
  });
  afterAll(async () => {
    await Promise.all([a, cached, uncached].map((app) => app?.close()));
    await database?.drop();
  });

  test("a revocation on one instance applies on another at once with 0, within the cache time otherwise", async () => {
    const acme = await provisionTenant(a, "acme");
    const { credential, token } = await clientFor(AdminService, a, "connect", acme.admin).createApiKey({
      tenant: "acme",
      name: "to-revoke",
      roles: [Role.READER],
    });
    const listOn = (app: TestApp) => clientFor(AuditService, app, "connect", token).list({});
    // Both instances accept the key; `cached` holds it from some moment between filledFrom and filledBy, so at least
    // until filledFrom + CACHE_MS and at most until filledBy + CACHE_MS.
    const filledFrom = Date.now();
    await listOn(cached);
    const filledBy = Date.now();
    await listOn(uncached);

    await clientFor(AdminService, a, "connect", acme.admin).revokeCredential({ tenant: "acme", id: credential?.id });
    const revokedAt = Date.now();
    // Not cached: refused at once.
    await expectError(listOn(uncached), { code: Code.Unauthenticated, reason: "CREDENTIAL_REVOKED" });

    // Cached: still accepted while its entry lasts (checked only if this machine got here in time to see it),
    // then refused, no later than the entry's end.
    const beforeCall = Date.now();
    const stillAccepted = await listOn(cached).then(
      () => true,
      () => false,
    );
    if (beforeCall - filledFrom < CACHE_MS - 1000) expect(stillAccepted).toBe(true);
    let refusedAt: number | undefined;
    while (refusedAt === undefined) {
      const startedAt = Date.now();
      const refused = await listOn(cached).then(
        () => false,
        () => true,
      );
      if (refused) refusedAt = startedAt;
      else {
        // A call started after the entry's latest end was served from a stale entry.
        expect(startedAt - filledBy, "the cached credential outlived CREDENTIAL_CACHE_MS").toBeLessThan(CACHE_MS);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await expectError(listOn(cached), { code: Code.Unauthenticated, reason: "CREDENTIAL_REVOKED" });
    console.log(
      `credential cache: revoked ${revokedAt - filledBy} ms after the cache was filled; the other instance refused ` +
        `it from ${refusedAt - filledBy} ms (CREDENTIAL_CACHE_MS=${CACHE_MS})`,
    );
  });
});
