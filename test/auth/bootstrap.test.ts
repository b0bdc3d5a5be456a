import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { startTestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";

const newToken = () => `at_boot_${randomBytes(32).toString("base64url")}`;
const admin = (app: { url: string }, token: string) => clientFor(AdminService, app, "connect", token);

let database: TestDatabase;
let dataDir: string;
beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = await mkdtemp(path.join(tmpdir(), "audit-bootstrap-"));
});
afterAll(async () => {
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

test("AUDIT_ADMIN_TOKEN is the superadmin token, and changing it rotates it", async () => {
  const [first, second] = [newToken(), newToken()];
  const one = await startTestApp({ database, env: { AUDIT_ADMIN_TOKEN: first } });
  await admin(one, first).createTenant({ tenant: { id: "one" } });
  await one.close();

  const two = await startTestApp({ database, env: { AUDIT_ADMIN_TOKEN: second } });
  try {
    await expectError(admin(two, first).listTenants({}), { code: Code.Unauthenticated, reason: "INVALID_TOKEN" });
    const { tenants } = await admin(two, second).listTenants({});
    expect(tenants.map((t) => t.id)).toEqual(["one"]);
  } finally {
    await two.close();
  }
});

test("with no token configured and no superadmin yet, one is generated into DATA_DIR/admin-token", async () => {
  const fresh = await createTestDatabase();
  const app = await startTestApp({ database: fresh, env: { AUDIT_ADMIN_TOKEN: "", DATA_DIR: dataDir } });
  try {
    const file = path.join(dataDir, "admin-token");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const token = (await readFile(file, "utf8")).trim();
    expect(token).toMatch(/^at_/);
    await admin(app, token).createTenant({ tenant: { id: "boot" } });
    expect(app.logs.join("\n")).toContain(file);
    expect(app.logs.join("\n")).not.toContain(token);
  } finally {
    await app.close();
    await fresh.drop();
  }
});

test("removing AUDIT_ADMIN_TOKEN retires its token; a generated one takes over", async () => {
  const fresh = await createTestDatabase();
  const dir = await mkdtemp(path.join(tmpdir(), "audit-bootstrap-"));
  const token = newToken();
  try {
    const before = await startTestApp({ database: fresh, env: { AUDIT_ADMIN_TOKEN: token, DATA_DIR: dir } });
    await admin(before, token).listTenants({});
    await before.close();

    const after = await startTestApp({ database: fresh, env: { AUDIT_ADMIN_TOKEN: "", DATA_DIR: dir } });
    try {
      // Revoked, then replaced by the generated token: the one bootstrap credential no longer holds its hash.
      await expectError(admin(after, token).listTenants({}), { code: Code.Unauthenticated, reason: "INVALID_TOKEN" });
      expect(after.logs.join("\n")).toContain("AUDIT_ADMIN_TOKEN is no longer set: its token is revoked");
      const generated = (await readFile(path.join(dir, "admin-token"), "utf8")).trim();
      await admin(after, generated).listTenants({});
    } finally {
      await after.close();
    }
  } finally {
    await fresh.drop();
    await rm(dir, { recursive: true, force: true });
  }
});

test("a superadmin revokes a global credential; a restart with the same AUDIT_ADMIN_TOKEN keeps it revoked", async () => {
  const fresh = await createTestDatabase();
  const [token, next] = [newToken(), newToken()];
  const app = await startTestApp({ database: fresh, env: { AUDIT_ADMIN_TOKEN: token } });
  try {
    const tenant = await provisionTenant(app, "acme");
    // A tenant admin leaving the tenant empty acts on its own tenant, never on the global credentials.
    await expectError(admin(app, tenant.admin).revokeCredential({ id: "bootstrap-admin" }), {
      code: Code.NotFound,
      reason: "CREDENTIAL_NOT_FOUND",
    });
    const { credentials } = await admin(app, token).listCredentials({});
    expect(credentials.map((c) => [c.id, c.tenant, c.name])).toEqual([["bootstrap-admin", "", "AUDIT_ADMIN_TOKEN"]]);
    const { credential } = await admin(app, token).revokeCredential({ id: "bootstrap-admin" });
    expect(credential?.revokeTime).toBeDefined();
    await expectError(admin(app, token).listTenants({}), { code: Code.Unauthenticated, reason: "CREDENTIAL_REVOKED" });
  } finally {
    await app.close();
  }
  const again = await startTestApp({ database: fresh, env: { AUDIT_ADMIN_TOKEN: token } });
  try {
    await expectError(admin(again, token).listTenants({}), {
      code: Code.Unauthenticated,
      reason: "CREDENTIAL_REVOKED",
    });
    expect(again.logs.join("\n")).toContain("AUDIT_ADMIN_TOKEN was revoked through the API");
  } finally {
    await again.close();
  }
  const rotated = await startTestApp({ database: fresh, env: { AUDIT_ADMIN_TOKEN: next } });
  try {
    await admin(rotated, next).listTenants({});
  } finally {
    await rotated.close();
    await fresh.drop();
  }
});

test("each database keeps its own token file, and the log names it", async () => {
  const embedded = await createTestDatabase();
  const other = await createTestDatabase();
  const dir = await mkdtemp(path.join(tmpdir(), "audit-bootstrap-"));
  // As main.ts runs them: without DATABASE_URL the database is the embedded one, with it the URL's.
  const onEmbedded = { AUDIT_ADMIN_TOKEN: "", DATA_DIR: dir };
  const onOther = { ...onEmbedded, DATABASE_URL: other.url };
  try {
    const first = await startTestApp({ database: embedded, env: onEmbedded });
    await first.close();
    const embeddedToken = await readFile(path.join(dir, "admin-token"), "utf8");

    const second = await startTestApp({ database: other, env: onOther });
    await second.close();
    const sql = postgres(other.url, { max: 1 });
    const [id] = await sql<{ s: string }[]>`select system_identifier::text as s from pg_control_system()`;
    await sql.end();
    const otherFile = path.join(dir, `admin-token-${id?.s}-${new URL(other.url).pathname.slice(1)}`);
    expect((await readdir(dir)).sort()).toEqual(["admin-token", path.basename(otherFile)]);
    expect(second.logs.join("\n")).toContain(otherFile);
    expect(await readFile(path.join(dir, "admin-token"), "utf8")).toBe(embeddedToken);

    const back = await startTestApp({ database: embedded, env: onEmbedded });
    try {
      await admin(back, embeddedToken.trim()).listTenants({});
      const line = back.logs.find((l) => l.includes("the superadmin token for this database is in this file"));
      expect(JSON.parse(line ?? "{}").file).toBe(path.join(dir, "admin-token"));
    } finally {
      await back.close();
    }
    const otherAgain = await startTestApp({ database: other, env: onOther });
    try {
      await admin(otherAgain, (await readFile(otherFile, "utf8")).trim()).listTenants({});
    } finally {
      await otherAgain.close();
    }
  } finally {
    await embedded.drop();
    await other.drop();
    await rm(dir, { recursive: true, force: true });
  }
});
