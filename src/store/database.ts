import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import type { Logger } from "../logger.js";
import * as schema from "./schema.js";

export type Db = PostgresJsDatabase<typeof schema>;

export interface Database {
  sql: postgres.Sql;
  db: Db;
  /** True when a trivial query answers within a second. */
  ping(): Promise<boolean>;
  close(timeoutSeconds?: number): Promise<void>;
}

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../drizzle");
// Any constant shared by every instance: it serialises concurrent start-ups running the migrations.
const MIGRATION_LOCK = 0x61756474;

export interface ConnectOptions {
  poolSize: number;
  /** Server-side cap on any one statement, so a stuck query cannot hold a call forever. */
  statementTimeoutMs: number;
  logger: Logger;
}

export async function connectDatabase(url: string, options: ConnectOptions): Promise<Database> {
  await checkDriverPatched(options.logger);
  await runMigrations(url, options.logger);
  const sql = postgres(url, {
    max: options.poolSize,
    onnotice: () => {},
    connect_timeout: 5,
    // postgres.js waits up to 20 s (exponential, shared by the pool) before reconnecting after a failed attempt, and
    // a call waits with it. A short cap keeps calls failing fast during an outage and the service back within a
    // moment of the database; attempts are still only made when a call needs a connection.
    backoff: (attempts: number) => Math.min(0.05 * attempts, 0.25),
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    connection: {
      TimeZone: "UTC",
      application_name: "audit-trail",
      statement_timeout: options.statementTimeoutMs,
    },
  });
  const db = drizzle(sql, { schema });
  return {
    sql,
    db,
    async ping() {
      try {
        await Promise.race([
          sql`select 1`,
          new Promise((_, reject) => setTimeout(() => reject(new Error("ping timed out")), 1000).unref()),
        ]);
        return true;
      } catch {
        return false;
      }
    },
    close: (timeoutSeconds = 5) => sql.end({ timeout: timeoutSeconds }),
  };
}

async function runMigrations(url: string, logger: Logger): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(drizzle(sql), { migrationsFolder });
    logger.info("database migrations applied");
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * scripts/patch-postgres.mjs, run by npm's postinstall, fixes a postgres.js defect by which losing the database
 * crashes the process. An install with --ignore-scripts skips it; say so rather than find out in an outage.
 */
async function checkDriverPatched(logger: Logger): Promise<void> {
  const file = path.join(path.dirname(createRequire(import.meta.url).resolve("postgres")), "connection.js");
  const text = await readFile(file, "utf8").catch(() => "");
  if (!text.includes("audit-trail: scripts/patch-postgres.mjs")) {
    logger.error(
      { file },
      "postgres.js is not patched: a database outage can crash this process; run node scripts/patch-postgres.mjs",
    );
  }
}
