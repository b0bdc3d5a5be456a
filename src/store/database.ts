import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import { migrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { ConfigError, maskSecrets } from "../config.js";
import type { Logger } from "../logger.js";
import { checkDeployment } from "./deployment-checks.js";
import * as schema from "./schema.js";

export type Db = PostgresJsDatabase<typeof schema>;

export interface Database {
  sql: postgres.Sql;
  db: Db;
  /** True when a trivial query answers within a second. */
  ping(): Promise<boolean>;
  close(timeoutSeconds?: number): Promise<void>;
  /** What the deployment checks warned of at start (a role that can rewrite events, ...): /readyz shows them. */
  warnings: readonly string[];
}

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "../..");
const migrationsFolder = path.join(root, "drizzle");
const appRoleGrants = path.join(root, "scripts/app-role.sql");
// Any constant shared by every instance: it serialises concurrent start-ups running the migrations.
const MIGRATION_LOCK = 0x61756474;

export interface ConnectOptions {
  poolSize: number;
  /** Server-side cap on any one statement, so a stuck query cannot hold a call forever. */
  statementTimeoutMs: number;
  logger: Logger;
  /** A privileged role's URL: migrations run with it, and it grants the application's role what it needs. */
  migrationUrl?: string;
  /** Refuse to start when the service's role could rewrite events (REQUIRE_LEAST_PRIVILEGE). */
  requireLeastPrivilege?: boolean;
  /**
   * The settings the URLs came from (DATABASE_URL, MIGRATION_DATABASE_URL): a database that cannot be reached at
   * start is then a ConfigError naming the setting. Unset for a URL no setting gave (the embedded PostgreSQL).
   */
  settings?: { url: string; migrationUrl: string };
}

/** How long the pool waits for a new connection; EventStore bounds its wait for a reserved one by the same. */
export const CONNECT_TIMEOUT_SECONDS = 5;

export async function connectDatabase(url: string, options: ConnectOptions): Promise<Database> {
  const { logger } = options;
  const sql = postgres(url, {
    max: options.poolSize,
    onnotice: () => {},
    connect_timeout: CONNECT_TIMEOUT_SECONDS,
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
      // The hot statements are prepared once per connection (EventStore); plan each run for its own values all the
      // same, so a List picks its index by the tenant and filters it is given (docs/storage.md), never a generic plan.
      // The write transaction, whose plans do not depend on values, sets generic plans for itself (EventStore).
      plan_cache_mode: "force_custom_plan",
    },
  });
  const names = options.settings;
  let warnings: string[];
  try {
    const appRole = options.migrationUrl ? await currentUser(sql).catch(unreachable(names?.url, url)) : undefined;
    const migrationSetting = options.migrationUrl ? names?.migrationUrl : names?.url;
    await runMigrations(options.migrationUrl ?? url, appRole, logger, migrationSetting).catch(
      unreachable(migrationSetting, options.migrationUrl ?? url),
    );
    warnings = await checkDeployment(sql, { requireLeastPrivilege: options.requireLeastPrivilege ?? false, logger });
  } catch (error) {
    await sql.end({ timeout: 1 });
    throw error;
  }
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
    warnings,
  };
}

/**
 * Rethrows a failure to reach or log in to the database as a ConfigError naming the setting, with what to check;
 * anything else (a failing migration) as it is.
 */
function unreachable(setting: string | undefined, url: string) {
  return (error: unknown): never => {
    const advice = setting === undefined ? undefined : connectionAdvice(error);
    if (advice === undefined) throw error;
    throw new ConfigError(setting as string, maskSecrets(url), advice);
  };
}

/** What went wrong connecting and what to do about it, for the failures a setting can cause; else undefined. */
function connectionAdvice(error: unknown): string | undefined {
  const e = error as { code?: string; message?: string; address?: string; port?: number; hostname?: string };
  const where = e.address ? ` (${e.address}${e.port ? `:${e.port}` : ""})` : "";
  switch (e.code) {
    case "ECONNREFUSED":
      return `nothing accepts connections there${where}: start PostgreSQL, or correct the host and port`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `the host ${e.hostname ?? ""} cannot be resolved: correct the host name`;
    case "CONNECT_TIMEOUT":
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no answer from the server${where} (${e.code}): check the host, port and firewall`;
    case "ECONNRESET":
    case "CONNECTION_CLOSED":
    case "CONNECTION_ENDED":
    case "CONNECTION_DESTROYED":
      return `the server closed the connection (${e.code}): check that the URL names PostgreSQL, and its sslmode`;
    case "28P01":
    case "28000":
    case "SASL_SIGNATURE_MISMATCH":
      return `PostgreSQL refused the login (${e.message}): correct the user and password, or pg_hba.conf`;
    case "3D000":
      return `${e.message}: create it (createdb) or correct the database name`;
    case "57P03":
    case "53300":
      return `PostgreSQL cannot take the connection now (${e.message}): retry once it is ready`;
    default:
      return undefined;
  }
}

/** Applies the migrations and, when the application runs as another role, that role's grants. */
async function runMigrations(
  url: string,
  appRole: string | undefined,
  logger: Logger,
  setting = "DATABASE_URL",
): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK})`;
    const pending = await pendingMigrations(sql);
    if (pending === 0) logger.info("database schema up to date");
    else {
      const [may] = await sql<{ create: boolean }[]>`
        select has_database_privilege(current_database(), 'CREATE') as create`;
      if (!may?.create) {
        throw new ConfigError(
          setting,
          maskSecrets(url),
          "the database needs migrating, which this role may not do: set MIGRATION_DATABASE_URL to a role that may",
        );
      }
      await migrate(drizzle(sql), { migrationsFolder });
      logger.info("database migrations applied");
    }
    if (appRole === undefined) return;
    if (appRole === (await currentUser(sql))) {
      logger.warn({ role: appRole }, "MIGRATION_DATABASE_URL uses the same role as DATABASE_URL; no grants applied");
      return;
    }
    // The file is written for psql's :"app_role"; substituting a quoted identifier is what psql does with it.
    const grants = (await readFile(appRoleGrants, "utf8")).replaceAll(':"app_role"', quoteIdentifier(appRole));
    await sql.unsafe(grants);
    logger.info({ role: appRole }, "application role granted (scripts/app-role.sql)");
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * How many migrations the database lacks, by drizzle's own rule (a migration is applied when its folder time is
 * after the newest one recorded); undefined when the record cannot be read (a new database). An instance running
 * as the application's role, which may not create drizzle's schema, then starts without migrating.
 */
async function pendingMigrations(sql: postgres.Sql): Promise<number | undefined> {
  let newest: number;
  try {
    const [row] = await sql<{ newest: string | null }[]>`
      select max(created_at) as newest from drizzle.__drizzle_migrations`;
    newest = Number(row?.newest ?? 0);
  } catch {
    return undefined;
  }
  return readMigrationFiles({ migrationsFolder }).filter((m) => m.folderMillis > newest).length;
}

async function currentUser(sql: postgres.Sql): Promise<string> {
  const [row] = await sql<{ user: string }[]>`select current_user as user`;
  if (!row) throw new Error("select current_user returned no row");
  return row.user;
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
