import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { killAllServiceProcesses, type ServiceProcess, startServiceProcess } from "../reliability/service-process.js";
import { clientFor } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let database: TestDatabase;
let service: ServiceProcess;

// `npm run build`, then the production command: plain node on the compiled JavaScript, no tsx loader. (That a
// production-only install, `npm ci --omit=dev --omit=optional`, also starts is checked by .ci/run.)
beforeAll(async () => {
  await promisify(execFile)(process.execPath, ["scripts/build.mjs"], { cwd: repoRoot, timeout: 180_000 });
  database = await createTestDatabase();
  service = await startServiceProcess({ databaseUrl: database.url, nodeArgs: ["dist/src/main.js"] });
}, 240_000);

afterAll(async () => {
  await killAllServiceProcesses();
  await database?.drop();
});

test("the compiled service runs with plain node: ready, serves RPCs, and drains on SIGTERM", async () => {
  const ready = await fetch(`${service.url}/readyz`);
  expect(ready.status).toBe(200);

  const admin = clientFor(AdminService, service, "grpc", service.adminToken);
  await admin.createTenant({ tenant: { id: "built" } });
  const { token } = await admin.createApiKey({ tenant: "built", name: "writer", roles: [Role.WRITER] });
  const audit = clientFor(AuditService, service, "connect", token);
  const { event } = await audit.create({ event: { action: "build.check" } });
  expect(event?.tenant).toBe("built");
  expect(event?.action).toBe("build.check");

  // The browser console is part of the build.
  const page = await fetch(`${service.url}/console/`);
  expect(page.status).toBe(200);
  const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(await page.text())?.[1];
  expect((await fetch(`${service.url}/console/${script}`)).headers.get("content-type")).toMatch(/^text\/javascript/);

  // The embedded PostgreSQL was never started, and the process's own logs name no TypeScript file.
  expect(service.logs.join("\n")).not.toMatch(/embedded PostgreSQL|\.ts:\d/);
  service.signal("SIGTERM");
  expect(await service.exited).toEqual({ code: 0, signal: null });
});
