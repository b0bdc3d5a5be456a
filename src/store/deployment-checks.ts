import type postgres from "postgres";
import { ConfigError } from "../config.js";
import type { Logger } from "../logger.js";

/**
 * What the service can tell at start about guarantees that depend on how it was deployed, logged so that an operator
 * learns it before an incident does: whether the log is append-only by privilege, whether an acknowledgement is
 * durable. Returns what it warned of, for /readyz; docs/reliability.md explains each remedy.
 */
export async function checkDeployment(
  sql: postgres.Sql,
  options: { requireLeastPrivilege: boolean; logger: Logger },
): Promise<string[]> {
  const warnings = [
    await checkAppendOnly(sql, options.requireLeastPrivilege, options.logger),
    await checkDurability(sql, options.logger),
  ];
  return warnings.filter((w) => w !== undefined);
}

/**
 * Says at start-up whether the service's own role could rewrite the log: a superuser (which can switch the trigger
 * off for its session), the owner of events (which can disable or drop the trigger), or a role granted UPDATE,
 * DELETE or TRUNCATE. With REQUIRE_LEAST_PRIVILEGE that refuses the start.
 */
async function checkAppendOnly(sql: postgres.Sql, required: boolean, logger: Logger): Promise<string | undefined> {
  const [row] = await sql<{ role: string; superuser: boolean; owner: boolean; rewrite: boolean }[]>`
    select current_user as role,
      (select rolsuper from pg_roles where rolname = current_user) as superuser,
      pg_has_role(current_user, c.relowner, 'USAGE') as owner,
      has_table_privilege('events', 'UPDATE') or has_table_privilege('events', 'DELETE')
        or has_table_privilege('events', 'TRUNCATE') as rewrite
    from pg_class c where c.oid = 'events'::regclass`;
  if (!row) return undefined;
  if (!row.superuser && !row.owner && !row.rewrite) {
    logger.info({ role: row.role }, "audit events are append-only for the application's database role by privilege");
    return undefined;
  }
  const what = row.superuser
    ? `is a superuser: it can delete or rewrite audit events past the append-only trigger (SET session_replication_role = replica)`
    : row.owner
      ? "owns the events table: it can disable or drop the append-only trigger and then delete or rewrite audit events"
      : "holds UPDATE, DELETE or TRUNCATE on events: only the append-only trigger keeps it from rewriting audit events";
  const warning =
    `the service's database role "${row.role}" ${what}. Fix: set MIGRATION_DATABASE_URL to the owner's URL and ` +
    "DATABASE_URL to a role of its own, which the service then grants only SELECT and INSERT on events " +
    "(scripts/app-role.sql; docs/reliability.md)";
  if (required) throw new ConfigError("REQUIRE_LEAST_PRIVILEGE", "true", `refuses to start: ${warning}`);
  logger.warn({ role: row.role, superuser: row.superuser, owner: row.owner }, warning);
  return warning;
}

/**
 * An acknowledged event must survive a crash, and the service acknowledges on commit: that holds only if PostgreSQL
 * flushes commits (fsync) and waits for that flush before answering (synchronous_commit other than off). Both are
 * the server's defaults, but tuning guides turn them off; say so at start rather than lose events in a crash.
 */
async function checkDurability(sql: postgres.Sql, logger: Logger): Promise<string | undefined> {
  const [row] = await sql<{ synchronousCommit: string; fsync: string }[]>`
    select current_setting('synchronous_commit') as "synchronousCommit", current_setting('fsync') as fsync`;
  if (row && (row.synchronousCommit === "off" || row.fsync === "off")) {
    const warning = "PostgreSQL may lose committed transactions in a crash: acknowledged audit events are not durable";
    logger.error({ synchronous_commit: row.synchronousCommit, fsync: row.fsync }, warning);
    return warning;
  }
  return undefined;
}
