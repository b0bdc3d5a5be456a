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
  await runMigrations(url, options.logger);
  const sql = postgres(url, {
    max: options.poolSize,
    onnotice: () => {},
    connect_timeout: 5,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    connection: {
      TimeZone: "UTC",
      application_name: "audit-trail",
      statement_timeout: options.statementTimeoutMs,
      // The hot statements are prepared once per connection (EventStore); plan each run for its own values all the
      // same, so a List picks its index by the tenant and filters it is given (docs/storage.md), never a generic plan.
      plan_cache_mode: "force_custom_plan",
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
