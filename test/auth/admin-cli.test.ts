import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { childEnv } from "../support/child-env.js";
import { clientFor } from "../support/clients.js";
import { expectError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";

const run = promisify(execFile);
const given = appFixture();

async function cli(...args: string[]) {
  const { stdout } = await run(process.execPath, ["--import", "tsx", "src/cli/admin.ts", ...args], {
    env: childEnv({ AUDIT_URL: given.app.url, AUDIT_ADMIN_TOKEN: given.app.adminToken }),
  });
  return JSON.parse(stdout);
}

/** Runs the CLI with `input` on its standard input (a pipe); resolves with its exit code and output. */
function cliWithInput(input: string, env: Record<string, string | undefined>, ...args: string[]) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/admin.ts", ...args], {
    env: childEnv({ AUDIT_URL: given.app.url, ...env }),
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  child.stdin.end(input);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once("close", (code) => resolve({ code, stdout, stderr })),
  );
}

/** Whether `tenant/username` with `password` authenticates (HTTP Basic on a Connect call). */
async function canLogIn(tenant: string, username: string, password: string): Promise<boolean> {
  const response = await fetch(`${given.app.url}/audit.v1.AdminService/GetCaller`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Basic ${Buffer.from(`${tenant}/${username}:${password}`).toString("base64")}`,
    },
    body: "{}",
  });
  return response.status === 200;
}

test("the admin CLI creates a tenant, a key and a user, lists and revokes", async () => {
  const { tenant } = await cli("create-tenant", "cli-co", "--name", "CLI Co");
  expect(tenant.id).toBe("cli-co");
  const key = await cli("create-key", "--tenant", "cli-co", "--name", "svc", "--roles", "writer,reader");
  expect(key.token).toMatch(/^at_/);
  const { event } = await clientFor(AuditService, given.app, "connect", key.token).create({
    event: { action: "cli.test" },
  });
  expect(event?.tenant).toBe("cli-co");
  const created = await cliWithInput(
    "carol's secret\n",
    { AUDIT_ADMIN_TOKEN: given.app.adminToken },
    ...["create-user", "--tenant", "cli-co", "--username", "carol", "--roles", "reader"],
  );
  expect(created.code, created.stderr).toBe(0);
  const { credentials } = await cli("list-keys", "--tenant", "cli-co");
  expect(credentials.map((c: { name: string }) => c.name).sort()).toEqual(["carol", "svc"]);
  expect(JSON.stringify(credentials)).not.toContain(key.token);
  const revoked = await cli("revoke", "--tenant", "cli-co", key.credential.id);
  expect(revoked.credential.revokeTime).toBeTruthy();
  // The revoked key is refused from then on.
  await expectError(
    clientFor(AuditService, given.app, "connect", key.token).create({ event: { action: "cli.after" } }),
    {
      code: Code.Unauthenticated,
      reason: "CREDENTIAL_REVOKED",
    },
  );
}, 240_000);

test("create-user reads the password from standard input, and has no --password option", async () => {
  await cli("create-tenant", "stdin-co");
  const password = "correct horse battery staple\nwith a second line";
  const created = await cliWithInput(
    `${password}\n`,
    { AUDIT_ADMIN_TOKEN: given.app.adminToken },
    ...["create-user", "--tenant", "stdin-co", "--username", "dave", "--roles", "reader"],
  );
  expect(created.code, created.stderr).toBe(0);
  expect(await canLogIn("stdin-co", "dave", password)).toBe(true);
  expect(await canLogIn("stdin-co", "dave", `${password}\n`)).toBe(false);

  const refused = await cliWithInput(
    "",
    { AUDIT_ADMIN_TOKEN: given.app.adminToken },
    "create-user",
    "--password",
    "pw",
  );
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("Unknown option '--password'");
}, 240_000);

test("create-user asks for the password on a terminal without echoing it", async () => {
  await cli("create-tenant", "tty-co");
  const password = "typed-in-secret-42";
  // script(1) runs the CLI on a pseudo-terminal; what the terminal shows comes back on script's stdout.
  const command = [process.execPath, "--import", "tsx", "src/cli/admin.ts", "create-user"]
    .concat(["--tenant", "tty-co", "--username", "erin", "--roles", "reader"])
    .map((a) => `'${a}'`)
    .join(" ");
  const child = spawn("script", ["-qec", command, "/dev/null"], {
    env: childEnv({ AUDIT_URL: given.app.url, AUDIT_ADMIN_TOKEN: given.app.adminToken }),
  });
  let screen = "";
  const waitFor = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!screen.includes(text)) return;
        child.stdout.off("data", check);
        resolve();
      };
      child.stdout.on("data", check);
      check();
    });
  child.stdout.on("data", (d) => {
    screen += d;
  });
  // Typed only once asked: a terminal echoes what arrives before the CLI turns echo off.
  await waitFor("password: ");
  child.stdin.write(`${password}\r`);
  await waitFor("again: ");
  child.stdin.write(`${password}\r`);
  const code = await new Promise((resolve) => child.once("close", resolve));
  expect(code, screen).toBe(0);
  expect(screen).not.toContain(password);
  expect(await canLogIn("tty-co", "erin", password)).toBe(true);
}, 240_000);

test("without a token, the CLI says to set AUDIT_ADMIN_TOKEN or pass --token", async () => {
  const result = await cliWithInput("", { AUDIT_ADMIN_TOKEN: undefined, AUDIT_TOKEN: undefined }, "list-tenants");
  expect(result.code).toBe(2);
  expect(result.stderr).toContain("AUDIT_ADMIN_TOKEN");
  expect(result.stderr).toContain("--token");
}, 240_000);

test("a superadmin lists and revokes global credentials by leaving out --tenant", async () => {
  const { credentials } = await cli("list-keys");
  expect(credentials.map((c: { id: string }) => c.id)).toEqual(["bootstrap-admin"]);
  const revoked = await cli("revoke", "bootstrap-admin");
  expect(revoked.credential.revokeTime).toBeTruthy();
  const after = await cliWithInput("", { AUDIT_ADMIN_TOKEN: given.app.adminToken }, "list-tenants");
  expect(after.stderr).toContain("Unauthenticated: the credential has been revoked");
}, 240_000);
