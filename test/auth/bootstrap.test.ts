import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { startTestApp } from "../support/app.js";
import { clientFor } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";

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
  const first = await startTestApp({ database, env: { AUDIT_ADMIN_TOKEN: "first-admin-token-0123456789" } });
  await clientFor(AdminService, first, "connect", "first-admin-token-0123456789").createTenant({
    tenant: { id: "one" },
  });
  await first.close();

  const second = await startTestApp({ database, env: { AUDIT_ADMIN_TOKEN: "second-admin-token-0123456789" } });
  try {
    await expectError(clientFor(AdminService, second, "connect", "first-admin-token-0123456789").listTenants({}), {
      code: Code.Unauthenticated,
      reason: "INVALID_TOKEN",
    });
    const { tenants } = await clientFor(AdminService, second, "connect", "second-admin-token-0123456789").listTenants(
      {},
    );
    expect(tenants.map((t) => t.id)).toEqual(["one"]);
  } finally {
    await second.close();
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
    await clientFor(AdminService, app, "connect", token).createTenant({ tenant: { id: "boot" } });
    expect(app.logs.join("\n")).toContain(file);
    expect(app.logs.join("\n")).not.toContain(token);
  } finally {
    await app.close();
    await fresh.drop();
  }
});
