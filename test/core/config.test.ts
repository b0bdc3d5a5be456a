import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { ConfigError, entropyBits, loadConfig } from "../../src/config.js";
import { selfSignedCertificate } from "../support/certificate.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

const repoRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const goodToken = randomBytes(32).toString("base64");

let dir: string;
let tls: { cert: string; key: string; otherKey: string; notPem: string; unreadable: string };
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "audit-config-"));
  const pair = (name: string) => selfSignedCertificate(dir, name);
  const [a, b] = await Promise.all([pair("a"), pair("b")]);
  const notPem = path.join(dir, "not.pem");
  await writeFile(notPem, "hello\n");
  const unreadable = path.join(dir, "unreadable.key");
  await writeFile(unreadable, "x");
  await chmod(unreadable, 0o000);
  tls = { cert: a.cert, key: a.key, otherKey: b.key, notPem, unreadable };
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Loads the configuration, which must fail with one line about `variable`; returns the line. */
function refusal(env: Record<string, string>, variable: string): string {
  let error: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    error = e;
  }
  expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
  const message = (error as ConfigError).message;
  expect(message.startsWith(`${variable} is unset:`) || message.startsWith(`${variable}`)).toBe(true);
  expect((error as ConfigError).variable).toBe(variable);
  expect(message).not.toContain("\n");
  return message;
}

describe("loadConfig", () => {
  test("takes the defaults, and every valid value", () => {
    const config = loadConfig({});
    expect(config.port).toBe(8080);
    expect(config.logLevel).toBe("info");
    const set = loadConfig({
      PORT: "0",
      HOST: "::",
      DATABASE_URL: "postgres://app:p%40ss@db1:5432,db2:5433/audit?sslmode=require",
      MIGRATION_DATABASE_URL: "postgresql://owner@db1/audit",
      LOG_LEVEL: "debug",
      TLS_CERT: tls.cert,
      TLS_KEY: tls.key,
      CORS_ORIGINS: "https://app.example.com, http://localhost:3000",
      AUDIT_ADMIN_TOKEN: goodToken,
      GRPC_FAST_PATH: "0",
    });
    expect(set).toMatchObject({ port: 0, host: "::", logLevel: "debug", tlsKey: tls.key, grpcFastPath: false });
  });

  test.each([
    [{ PORT: "99999" }, "PORT", 'PORT="99999": must be a whole number from 0 to 65535'],
    [{ PORT: "80.5" }, "PORT", "whole number"],
    [{ PORT: "0x50" }, "PORT", "whole number"],
    [{ DATABASE_POOL_SIZE: "0" }, "DATABASE_POOL_SIZE", "from 1 to 1000"],
    [{ MAX_BODY_BYTES: "4MiB" }, "MAX_BODY_BYTES", '"4MiB": must be a whole number'],
    [{ REQUEST_TIMEOUT_MS: "-1" }, "REQUEST_TIMEOUT_MS", "from 100 to 3600000"],
    [{ INGEST_QUEUE_LIMIT: "1e9" }, "INGEST_QUEUE_LIMIT", "whole number"],
    [{ GRPC_FAST_PATH: "yes" }, "GRPC_FAST_PATH", "true or false"],
    [{ LOG_LEVEL: "verbose" }, "LOG_LEVEL", "fatal, error, warn, info, debug, trace, silent"],
    [{ HOST: "my host" }, "HOST", "IP address"],
    [{ DATA_DIR: "/etc/hostname" }, "DATA_DIR", "is not a directory"],
    [{ DATABASE_URL: "localhost:5432" }, "DATABASE_URL", "postgres://user:password@host:5432/database"],
    [{ DATABASE_URL: "mysql://u:pw@h/db" }, "DATABASE_URL", '"mysql://u:****@h/db"'],
    [{ DATABASE_URL: "postgres://u:p w@h:99999/db" }, "DATABASE_URL", '"postgres://u:****@h:99999/db"'],
    [{ MIGRATION_DATABASE_URL: "postgres://o:secret@h/db" }, "MIGRATION_DATABASE_URL", "needs DATABASE_URL"],
    [{ CORS_ORIGINS: "https://ok.example.com,https://x.example.com/path" }, "CORS_ORIGINS", "is not an origin"],
    [{ CORS_ORIGINS: "example.com" }, "CORS_ORIGINS", "scheme://host[:port]"],
    [{ AUDIT_ADMIN_TOKEN: "at_reviewtoken123" }, "AUDIT_ADMIN_TOKEN", "openssl rand -base64 32"],
    [{ AUDIT_ADMIN_TOKEN: "a".repeat(200) }, "AUDIT_ADMIN_TOKEN", "about 0 bits of entropy, at least 128"],
    [{ AUDIT_ADMIN_TOKEN: `${goodToken} ` }, "AUDIT_ADMIN_TOKEN", "printable ASCII without spaces"],
  ])("refuses %j, naming %s", (env, variable, expected) => {
    expect(refusal(env, variable)).toContain(expected);
  });

  test("never shows a password or the admin token", () => {
    expect(refusal({ DATABASE_URL: "postgres://u:hun/ter@2@h:1:2/db" }, "DATABASE_URL")).toContain(
      '"postgres://u:****@h:1:2/db"',
    );
    expect(refusal({ DATABASE_URL: "mysql://user:hunter2@db/audit" }, "DATABASE_URL")).not.toContain("hunter2");
    expect(refusal({ DATABASE_URL: "mysql://db/audit?password=hunter2&x=1" }, "DATABASE_URL")).toContain(
      '"mysql://db/audit?password=****&x=1"',
    );
    const weak = "hunter2hunter2hunter2";
    const line = refusal({ AUDIT_ADMIN_TOKEN: weak }, "AUDIT_ADMIN_TOKEN");
    expect(line).not.toContain(weak);
    expect(line).toContain("(21 characters, not shown)");
  });

  test("TLS files must both be given, readable, and belong together", () => {
    expect(refusal({ TLS_CERT: tls.cert }, "TLS_KEY")).toContain("TLS_KEY is unset: must be set with TLS_CERT");
    expect(refusal({ TLS_KEY: tls.key }, "TLS_CERT")).toContain("TLS_CERT is unset");
    expect(refusal({ TLS_CERT: path.join(dir, "missing.crt"), TLS_KEY: tls.key }, "TLS_CERT")).toContain(
      "cannot be read (ENOENT)",
    );
    expect(refusal({ TLS_CERT: tls.notPem, TLS_KEY: tls.key }, "TLS_CERT")).toContain("holds no PEM certificate");
    expect(refusal({ TLS_CERT: tls.cert, TLS_KEY: tls.notPem }, "TLS_KEY")).toContain("holds no unencrypted PEM");
    expect(refusal({ TLS_CERT: tls.cert, TLS_KEY: tls.otherKey }, "TLS_KEY")).toContain(
      "is not the private key of TLS_CERT's certificate",
    );
    if (process.getuid?.() !== 0) {
      expect(refusal({ TLS_CERT: tls.cert, TLS_KEY: tls.unreadable }, "TLS_KEY")).toContain("cannot be read (EACCES)");
    }
  });

  test("the README's configuration table lists every variable loadConfig reads", async () => {
    const source = await readFile(path.join(repoRoot, "src/config.ts"), "utf8");
    const body = source.slice(source.indexOf("export function loadConfig"), source.indexOf("export class ConfigError"));
    // Every variable name the function mentions: quoted (passed to a helper) or read as env.NAME.
    const read = new Set(
      [...body.matchAll(/"([A-Z][A-Z0-9_]+)"|\benv\.([A-Z][A-Z0-9_]+)/g)].map((m) => m[1] ?? m[2] ?? ""),
    );
    const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
    const table = readme.slice(
      readme.indexOf("## Configuration"),
      readme.indexOf("\n## ", readme.indexOf("## Configuration") + 1),
    );
    const listed = new Set(
      [...table.matchAll(/^\| (`[A-Z0-9_]+`(?:, `[A-Z0-9_]+`)*) \|/gm)].flatMap((m) =>
        (m[1] ?? "").split(", ").map((v) => v.slice(1, -1)),
      ),
    );
    expect(read.size).toBeGreaterThan(15);
    expect([...read].filter((v) => !listed.has(v ?? ""))).toEqual([]);
  });

  test("the entropy estimate tells random tokens from patterned ones", () => {
    expect(entropyBits(randomBytes(32).toString("base64"))).toBeGreaterThan(180);
    expect(entropyBits(randomBytes(32).toString("hex"))).toBeGreaterThan(200);
    expect(entropyBits("at_reviewtoken123")).toBeLessThan(70);
    expect(entropyBits("first-admin-token-0123456789")).toBeLessThan(128);
    expect(entropyBits("x".repeat(64))).toBe(0);
  });
});

describe("the service's entry point", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(() => database?.drop());

  /** Runs src/main.ts as `npm start` does, until it exits. */
  async function start(env: Record<string, string>) {
    const child = execFile(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: repoRoot,
      timeout: 200_000,
      env: { PATH: process.env.PATH, HOST: "127.0.0.1", PORT: "0", DATA_DIR: dir, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => {
      stdout += d;
    });
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    return { code, stdout, stderr };
  }

  /** A port nothing listens on. */
  async function closedPort(): Promise<number> {
    const server = net.createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  test("ends every bad setting and every unreachable database with one line naming the variable, and exit 1", async () => {
    const server = new URL(inject("serverUrl"));
    const missingDatabase = new URL(server);
    // A password the server ignores (trust) or its own (the embedded server's): either way masked in the line.
    if (!missingDatabase.password) missingDatabase.password = "hunter2";
    missingDatabase.pathname = "/no_such_database_here";
    const busy = net.createServer().listen(0, "127.0.0.1");
    await new Promise((resolve) => busy.once("listening", resolve));
    const busyPort = String((busy.address() as net.AddressInfo).port);
    // Each start takes 2-10 s (tsx compiles the service); every other setting takes PORT's path (loadConfig's tests).
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: "99999" }, /^audit-trail cannot start: PORT="99999": must be a whole number from 0 to 65535$/],
      [{ DATABASE_URL: "not a url" }, /^audit-trail cannot start: DATABASE_URL="not a url": must be a PostgreSQL URL/],
      [
        { DATABASE_URL: `postgres://app:hunter2@127.0.0.1:${await closedPort()}/audit` },
        /^audit-trail cannot start: DATABASE_URL="postgres:\/\/app:\*\*\*\*@127\.0\.0\.1:\d+\/audit": nothing accepts connections there \(127\.0\.0\.1:\d+\): start PostgreSQL/,
      ],
      [
        { DATABASE_URL: missingDatabase.toString() },
        /^audit-trail cannot start: DATABASE_URL="postgres:\/\/[^"]*:\*\*\*\*@[^"]*\/no_such_database_here": database "no_such_database_here" does not exist: create it/,
      ],
      [
        { DATABASE_URL: database.url, PORT: busyPort },
        new RegExp(`^audit-trail cannot start: PORT="${busyPort}": 127\\.0\\.0\\.1:${busyPort} is in use: `),
      ],
    ];
    try {
      const results = await Promise.all(cases.map(([env]) => start(env)));
      results.forEach((result, i) => {
        const [env, expected] = cases[i] as [Record<string, string>, RegExp];
        const context = `${JSON.stringify(env)}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
        expect(result.code, context).toBe(1);
        const lines = result.stderr.split("\n").filter(Boolean);
        expect(lines, context).toHaveLength(1);
        expect(lines[0], context).toMatch(expected);
        expect(result.stderr, context).not.toContain("hunter2");
        expect(result.stderr, context).not.toMatch(/\n\s+at /);
        // Nothing logged at error or fatal: the one line is the whole story.
        expect(result.stdout, context).not.toMatch(/"level":(50|60)/);
      });
    } finally {
      busy.close();
    }
  }, 300_000);
});
