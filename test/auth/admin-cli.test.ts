import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor } from "../support/clients.js";

const run = promisify(execFile);
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

async function cli(...args: string[]) {
  const { stdout } = await run(process.execPath, ["--import", "tsx", "src/cli/admin.ts", ...args], {
    env: { ...process.env, AUDIT_URL: app.url, AUDIT_ADMIN_TOKEN: app.adminToken },
  });
  return JSON.parse(stdout);
}

test("the admin CLI creates a tenant, a key and a user, lists and revokes", async () => {
  const { tenant } = await cli("create-tenant", "cli-co", "--name", "CLI Co");
  expect(tenant.id).toBe("cli-co");
  const key = await cli("create-key", "--tenant", "cli-co", "--name", "svc", "--roles", "writer,reader");
  expect(key.token).toMatch(/^at_/);
  const { event } = await clientFor(AuditService, app, "connect", key.token).create({ event: { action: "cli.test" } });
  expect(event?.tenant).toBe("cli-co");
  await cli(
    "create-user",
    "--tenant",
    "cli-co",
    "--username",
    "carol",
    "--password",
    "carol's secret",
    "--roles",
    "reader",
  );
  const { credentials } = await cli("list-keys", "--tenant", "cli-co");
  expect(credentials.map((c: { name: string }) => c.name).sort()).toEqual(["carol", "svc"]);
  expect(JSON.stringify(credentials)).not.toContain(key.token);
  const revoked = await cli("revoke", "--tenant", "cli-co", key.credential.id);
  expect(revoked.credential.revokeTime).toBeTruthy();
}, 60_000);
