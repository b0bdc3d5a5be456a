import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, inject } from "vitest";
import { createLogger } from "../../src/logger.js";
import { connectDatabase, type Database } from "../../src/store/database.js";

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database on the run's PostgreSQL server, private to the calling test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject("serverUrl");
  const name = `audit_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const admin = postgres(serverUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/**
 * A fresh database with the service's schema, connected as the service connects, for the calling file: its hooks
 * create it before the file's own hooks run and close and drop it after them. `database` is readable in hooks and
 * tests only.
 */
export function connectedTestDatabase(options: { poolSize: number; statementTimeoutMs?: number }): {
  readonly database: Database;
} {
  let testDb: TestDatabase | undefined;
  let database: Database | undefined;
  beforeAll(async () => {
    testDb = await createTestDatabase();
    database = await connectDatabase(testDb.url, {
      poolSize: options.poolSize,
      statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
      logger: createLogger("warn"),
    });
  });
  afterAll(async () => {
    await database?.close();
    await testDb?.drop();
  });
  return {
    get database() {
      if (!database) throw new Error("the test database is connected in beforeAll: read it in a hook or a test");
      return database;
    },
  };
}
