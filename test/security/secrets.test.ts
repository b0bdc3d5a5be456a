import * as crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { hashPassword, hashToken, secretsEqual, verifyPassword } from "../../src/auth/secrets.js";
import { clientFor } from "../support/clients.js";
import { PASSWORD, startWorld, stopWorld, type World } from "./world.js";

// Every timingSafeEqual call in this process, the service's included, goes through this spy.
vi.mock("node:crypto", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:crypto")>();
  return { ...actual, default: actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});
const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);

let world: World;
/** Every secret this file hands the service: none may appear in a log line or in the database as given. */
const secrets = new Set<string>();

beforeAll(async () => {
  // No credential cache: every call below authenticates from scratch.
  world = await startWorld({ CREDENTIAL_CACHE_MS: "0" });
  for (const tenant of [world.acme, world.globex]) {
    for (const value of Object.values(tenant))
      if (typeof value === "string" && value.startsWith("at_")) secrets.add(value);
  }
  secrets.add(world.app.adminToken);
  secrets.add(world.wrongToken);
  secrets.add(PASSWORD);
  await useEverySecret();
});
afterAll(() => stopWorld(world));

/** Exercises every place a secret passes: keys, users, logins, sessions, Basic auth, bodies, failures. */
async function useEverySecret(): Promise<void> {
  const admin = clientFor(AdminService, world.app, "connect", world.acme.admin);
  const { token: freshKey } = await admin.createApiKey({ name: "fresh", roles: [Role.WRITER] });
  secrets.add(freshKey);
  const userPassword = "another-password-2";
  secrets.add(userPassword);
  await admin.createUser({ username: "secret-user", password: userPassword, roles: [Role.READER] });
  for (const protocol of ["connect", "grpc"] as const) {
    const anonymous = clientFor(AdminService, world.app, protocol);
    const { token: session } = await anonymous.login({
      tenant: "acme",
      username: "secret-user",
      password: userPassword,
    });
    secrets.add(session);
    await clientFor(AuditService, world.app, protocol, session).list({});
    await clientFor(AuditService, world.app, protocol, freshKey).create({ event: { action: "secret.use" } });
    await expect(
      anonymous.login({ tenant: "acme", username: "secret-user", password: "wrong-password-3" }),
    ).rejects.toThrow();
    secrets.add("wrong-password-3");
    await expect(clientFor(AuditService, world.app, protocol, world.wrongToken).list({})).rejects.toThrow();
  }
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`acme/${user}:${password}`).toString("base64")}`;
  for (const authorization of [
    basic("secret-user", userPassword),
    basic("secret-user", "wrong-password-3"),
    basic("nobody", userPassword),
  ]) {
    secrets.add(authorization.slice(6));
    await fetch(`${world.app.url}/v1/tenants/acme/events`, { headers: { authorization } }).then((r) => r.text());
    await fetch(`${world.app.url}/uc/resources/audit/list`, {
      method: "POST",
      headers: { authorization, "content-type": "application/xml" },
      body: "<audit-filter/>",
    }).then((r) => r.text());
  }
  // PlanoAuth carries its token in the body, valid or not.
  for (const token of [freshKey, world.wrongToken]) {
    await fetch(`${world.app.url}/api/v1/audit_events_fmp/create`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        token,
        unique_id: "s1",
        script_name: "s",
        host_name: "h",
        file_name: "f",
        start_time: "bad time",
      }),
    }).then((r) => r.text());
  }
  await fetch(`${world.app.url}/odata/Audits`, {
    method: "POST",
    headers: { authorization: world.wrongToken, "content-type": "application/json" },
    body: "{}",
  }).then((r) => r.text());
}

describe("secrets", () => {
  test("are stored hashed: SHA-256 for tokens, salted scrypt for passwords, never as given", async () => {
    const keys = await world.sql<{ secret_hash: Buffer; salt: Buffer | null; kind: number; token_prefix: string }[]>`
      select secret_hash, salt, kind, token_prefix from credentials`;
    const hashes = new Set(keys.map((k) => k.secret_hash.toString("hex")));
    for (const secret of secrets) {
      if (secret.startsWith("at_") && secret !== world.wrongToken)
        expect(hashes.has(hashToken(secret).toString("hex")), "a token's SHA-256 is its stored form").toBe(true);
    }
    const users = keys.filter((k) => k.kind === 2);
    expect(users.length).toBeGreaterThan(0);
    for (const user of users) {
      expect(user.salt?.length).toBe(16);
      expect(user.secret_hash.length).toBe(32);
      // Not an unsalted hash of the password.
      expect(user.secret_hash.equals(hashToken(PASSWORD))).toBe(false);
    }
    const readerUser = (
      await world.sql<{ secret_hash: Buffer; salt: Buffer }[]>`
      select secret_hash, salt from credentials where tenant = 'acme' and name = 'reader-user' and kind = 2`
    )[0];
    expect(readerUser && (await hashPassword(PASSWORD, readerUser.salt)).hash.equals(readerUser.secret_hash)).toBe(
      true,
    );

    // No table holds any secret as given, as text or as bytes.
    const tables = await world.sql<{ name: string }[]>`
      select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`;
    for (const { name } of tables) {
      const rows = await world.sql<{ row: string }[]>`select t::text as row from ${world.sql(name)} t`;
      for (const { row } of rows) {
        for (const secret of secrets) {
          expect(row.includes(secret), `${name} holds a secret`).toBe(false);
          expect(row.includes(Buffer.from(secret).toString("hex")), `${name} holds a secret's bytes`).toBe(false);
        }
      }
    }
  });

  test("are never logged", async () => {
    const logs = world.app.logs.join("\n");
    // The logs are not empty: the calls above were logged, only without their secrets.
    expect(world.app.logs.filter((l) => l.includes('"msg":"call"')).length).toBeGreaterThan(20);
    expect(logs).toContain("authentication failed");
    for (const secret of secrets) {
      expect(logs.includes(secret), `a log line holds the secret ${secret.slice(0, 6)}…`).toBe(false);
      expect(logs.includes(Buffer.from(secret).toString("base64")), "a log line holds a secret in base64").toBe(false);
    }
    console.log(`secrets: ${secrets.size} secrets absent from ${world.app.logs.length} log lines and from every table`);
  });

  test("are compared in constant time: secretsEqual and verifyPassword use timingSafeEqual", async () => {
    timingSafeEqual.mockClear();
    const a = Buffer.from("a secret");
    expect(secretsEqual(a, Buffer.from("a secret"))).toBe(true);
    expect(secretsEqual(a, Buffer.from("a secreT"))).toBe(false);
    // Different lengths are compared as digests, so the comparison itself never short-cuts on length.
    expect(secretsEqual(a, Buffer.from("a much longer secret"))).toBe(false);
    expect(timingSafeEqual).toHaveBeenCalledTimes(3);
    for (const [x, y] of timingSafeEqual.mock.calls) expect((x as Buffer).length).toBe((y as Buffer).length);

    const { hash, salt } = await hashPassword("pw-1234567");
    timingSafeEqual.mockClear();
    expect(await verifyPassword("pw-1234567", salt, hash)).toBe(true);
    expect(await verifyPassword("pw-7654321", salt, hash)).toBe(false);
    expect(timingSafeEqual).toHaveBeenCalledTimes(2);
  });

  test("the service compares every presented secret in constant time", async () => {
    // Each call's own answer is checked too, so a comparison counted on a call that failed early is not mistaken
    // for the one under test.
    const calls = async <T>(run: () => Promise<T>, answered: (result: T) => void) => {
      timingSafeEqual.mockClear();
      answered(await run());
      return timingSafeEqual.mock.calls.length;
    };
    const audit = (token: string) => clientFor(AuditService, world.app, "connect", token);
    // A valid API key: looked up by its hash, then compared.
    expect(
      await calls(
        () => audit(world.acme.reader).list({}),
        (r) => expect(r.events.length).toBeGreaterThan(0),
      ),
    ).toBeGreaterThanOrEqual(1);
    const basic = (user: string, password: string) =>
      fetch(`${world.app.url}/v1/tenants/acme/events`, {
        headers: { authorization: `Basic ${Buffer.from(`acme/${user}:${password}`).toString("base64")}` },
      }).then(async (r) => ({ status: r.status, text: await r.text() }));
    const status = (expected: number) => (r: { status: number; text: string }) =>
      expect(r.status, r.text).toBe(expected);
    // A password, right or wrong, and one for a user who does not exist (a dummy comparison keeps the time the same).
    expect(await calls(() => basic("reader-user", PASSWORD), status(200))).toBeGreaterThanOrEqual(1);
    expect(await calls(() => basic("reader-user", "wrong-password"), status(401))).toBeGreaterThanOrEqual(1);
    expect(await calls(() => basic("no-such-user", "wrong-password"), status(401))).toBeGreaterThanOrEqual(1);
  });
});
