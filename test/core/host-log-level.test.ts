import { randomBytes } from "node:crypto";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

// README: HOST is "the address to listen on: an IP address (`::` for every interface) or a host name of this
// machine"; LOG_LEVEL is the pino level. Both through the real server: which addresses answer, which lines appear.

/** Whether `host`:`port` accepts a TCP connection (a refusal is ECONNREFUSED; anything else is an error). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", (error: NodeJS.ErrnoException) =>
      error.code === "ECONNREFUSED" ? resolve(false) : reject(error),
    );
  });
}

async function healthz(host: string, port: number): Promise<number> {
  return (await fetch(`http://${host}:${port}/healthz`)).status;
}

// One database for the file's apps, which run one after another: each starts without migrating again.
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

async function withApp(env: Record<string, string>, fn: (app: TestApp) => Promise<void>): Promise<void> {
  const app = await startTestApp({ env, database });
  try {
    await fn(app);
  } finally {
    await app.close();
  }
}

describe("HOST", () => {
  test("an address listens there only: 127.0.0.2 answers, 127.0.0.1 on the same port refuses", async () => {
    await withApp({ HOST: "127.0.0.2" }, async (app) => {
      expect(await healthz("127.0.0.2", app.port)).toBe(200);
      expect(await accepts("127.0.0.1", app.port)).toBe(false);
    });
  });

  test("0.0.0.0 (the control) answers on every IPv4 address", async () => {
    await withApp({ HOST: "0.0.0.0" }, async (app) => {
      expect(await healthz("127.0.0.1", app.port)).toBe(200);
      expect(await healthz("127.0.0.2", app.port)).toBe(200);
    });
  });

  test("a host name of this machine is resolved and listened on", async () => {
    await withApp({ HOST: "localhost" }, async (app) => {
      expect(await healthz("localhost", app.port)).toBe(200);
    });
  });
});

describe("LOG_LEVEL", () => {
  /** A served call (logged at INFO) and a refused CORS preflight (logged at WARN, CORS_ORIGINS being unset). */
  async function infoAndWarn(app: TestApp): Promise<void> {
    const acme = await provisionTenant(app, `log-${randomBytes(4).toString("hex")}`);
    await clientFor(AuditService, app, "connect", acme.writer).create({ event: { action: "log.level" } });
    const preflight = await fetch(`${app.url}/audit.v1.AuditService/Create`, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(403);
  }
  const levels = (app: TestApp) => app.logs.map((l) => (JSON.parse(l) as { level: number }).level);
  const messages = (app: TestApp) => app.logs.map((l) => (JSON.parse(l) as { msg: string }).msg);

  test("info (the control) logs both the call and the warning", async () => {
    await withApp({ LOG_LEVEL: "info" }, async (app) => {
      await infoAndWarn(app);
      expect(messages(app)).toContain("call");
      expect(levels(app)).toContain(40);
    });
  });

  test("warn keeps the warning and drops every INFO line", async () => {
    await withApp({ LOG_LEVEL: "warn" }, async (app) => {
      await infoAndWarn(app);
      expect(levels(app)).toContain(40);
      expect(levels(app).filter((level) => level < 40)).toEqual([]);
      expect(messages(app)).not.toContain("listening");
    });
  });

  test("silent writes nothing", async () => {
    await withApp({ LOG_LEVEL: "silent" }, async (app) => {
      await infoAndWarn(app);
      expect(app.logs).toEqual([]);
    });
  });
});
