import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile, realpath } from "node:fs/promises";
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

/** `npm run start:prod`'s command: the launcher with the production memory settings, plain node, the compiled entry. */
const startProd = (
  JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")).scripts["start:prod"] as string
)
  .trim()
  .split(/\s+/);

// `npm run build`, then the production command: plain node on the compiled JavaScript, no tsx loader. (That a
// production-only install, `npm ci --omit=dev --omit=optional`, also starts is checked by .ci/run.)
beforeAll(async () => {
  await promisify(execFile)(process.execPath, ["scripts/build.mjs"], { cwd: repoRoot, timeout: 180_000 });
  database = await createTestDatabase();
  service = await startServiceProcess({ databaseUrl: database.url, command: startProd });
}, 240_000);

afterAll(async () => {
  await killAllServiceProcesses();
  await database?.drop();
});

test("the production command runs the built service with the memory settings of scripts/node.sh", async () => {
  expect(startProd.slice(-1)).toEqual(["dist/src/main.js"]);
  // The launcher exec()s node, so the pid is the service's own and its environment carries the settings.
  const environ = (await readFile(`/proc/${service.pid}/environ`, "utf8")).split("\0");
  expect(environ).toEqual(
    expect.arrayContaining([
      "MALLOC_ARENA_MAX=2",
      "MALLOC_MMAP_THRESHOLD_=131072",
      "NODE_OPTIONS=--max-semi-space-size=8",
    ]),
  );
  // Its executable is node itself (NODE is this node), not the shell: the main thread's name differs by version.
  expect(await realpath(`/proc/${service.pid}/exe`)).toBe(await realpath(process.execPath));
});

/** Runs `script` through the launcher with only `env` set, on this node; its stdout. */
async function underLauncher(script: string, env: Record<string, string> = {}): Promise<string> {
  const [command = "", ...launcher] = startProd.slice(0, -1);
  const { stdout } = await promisify(execFile)(command, [...launcher, "-e", script], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, NODE: process.execPath, ...env },
  });
  return stdout.trim();
}

// Allocates short-lived objects until the young generation has grown to its ceiling; prints that in MiB.
const youngGenerationCeiling = `
  const v8 = require("node:v8");
  let max = 0, keep = [];
  for (let i = 0; i < 2e6; i++) {
    keep.push({ i, s: "x" + i });
    if (keep.length > 100000) keep = [];
    if (i % 50000 === 0) max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size);
  }
  console.log(max / 1048576);`;

/**
 * The young generation's ceiling in MiB: two semi-spaces, plus, on some versions (Node 24's V8), a page or two of its
 * own that it reports with them.
 */
async function youngGeneration(env?: Record<string, string>): Promise<number> {
  return Number(await underLauncher(youngGenerationCeiling, env));
}

test("the launcher caps V8's young generation at two 8 MiB semi-spaces", async () => {
  const mib = await youngGeneration();
  expect(mib).toBeGreaterThanOrEqual(16);
  expect(mib).toBeLessThan(17);
});

test("an operator's environment overrides each of the launcher's settings", async () => {
  const env = { MALLOC_ARENA_MAX: "4", MALLOC_MMAP_THRESHOLD_: "65536", NODE_OPTIONS: "--max-semi-space-size=16" };
  expect(
    await underLauncher("console.log(process.env.MALLOC_ARENA_MAX, process.env.MALLOC_MMAP_THRESHOLD_)", env),
  ).toBe("4 65536");
  const mib = await youngGeneration(env);
  expect(mib).toBeGreaterThanOrEqual(32);
  expect(mib).toBeLessThan(33);
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
