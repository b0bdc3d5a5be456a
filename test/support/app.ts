import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { type App, startApp } from "../../src/app.js";
import type { Clock } from "../../src/clock.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { generateSignerKey } from "../../src/vlog/note.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

export interface TestApp {
  app: App;
  url: string;
  port: number;
  databaseUrl: string;
  /** Every log line the service wrote, for tests that check what is (not) logged. */
  logs: string[];
  /** The superadmin token (AUDIT_ADMIN_TOKEN) this instance accepts. */
  adminToken: string;
  close(): Promise<void>;
}

/** The checkpoint signer key of every test instance; its verifier key is what the verify tool is given. */
export const TEST_LOG_SIGNING_KEY = generateSignerKey("audit-trail.test");

export interface TestAppOptions {
  /** Settings over the tests' defaults, as the environment would give them. */
  env?: Record<string, string>;
  clock?: Clock;
  /** A database the caller owns (and drops); by default a fresh one, dropped on close. */
  database?: TestDatabase;
  spanExporter?: SpanExporter;
}

/** The real service on a free port, over its own fresh database. */
export async function startTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase());
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      callback();
    },
  });
  const adminToken = options.env?.AUDIT_ADMIN_TOKEN ?? `at_test_${randomBytes(24).toString("base64url")}`;
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    SHUTDOWN_GRACE_MS: "2000",
    AUDIT_ADMIN_TOKEN: adminToken,
    // A key of the test process rather than one generated into the checkout's .data/ (instances share it, as they must).
    LOG_SIGNING_KEY: TEST_LOG_SIGNING_KEY,
    ...options.env,
  });
  const app = await startApp({
    config,
    logger: createLogger(config.logLevel, sink),
    databaseUrl: database.url,
    clock: options.clock,
    spanExporter: options.spanExporter,
  });
  return {
    app,
    url: app.server.url,
    port: app.server.port,
    databaseUrl: database.url,
    logs,
    adminToken,
    async close() {
      await app.close();
      if (!options.database) await database.drop();
    },
  };
}
