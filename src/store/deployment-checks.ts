import type postgres from "postgres";
import type { Logger } from "../logger.js";

/**
 * What the service can tell at start about guarantees that depend on how it was deployed, logged so that an operator
 * learns it before an incident does: whether the log is append-only by privilege, whether an acknowledgement is
 * durable. docs/reliability.md explains each remedy.
 */
export async function checkDeployment(
  sql: postgres.Sql,
  options: { separateRoles: boolean; logger: Logger },
): Promise<void> {
  await reportAppendOnly(sql, options.separateRoles, options.logger);
  await checkDurability(sql, options.logger);
}

/**
 * Says at start-up whether the application's own role could rewrite the log. Without MIGRATION_DATABASE_URL it owns
 * the tables, and only the trigger stands in the way (an owner can drop it); docs/reliability.md has the remedy.
 * With it, a role that can still rewrite (a superuser, a member of the owner) is a deployment mistake worth a warning.
 */
async function reportAppendOnly(sql: postgres.Sql, separateRoles: boolean, logger: Logger): Promise<void> {
  const [row] = await sql<{ role: string; owner: boolean; rewrite: boolean }[]>`
    select current_user as role,
      pg_has_role(current_user, c.relowner, 'USAGE') as owner,
      has_table_privilege('events', 'UPDATE') or has_table_privilege('events', 'DELETE')
        or has_table_privilege('events', 'TRUNCATE') as rewrite
    from pg_class c where c.oid = 'events'::regclass`;
  if (!row) return;
  if (row.owner || row.rewrite) {
    logger[separateRoles ? "warn" : "info"](
      { role: row.role, owner: row.owner },
      "the application's database role could change audit events; only the append-only trigger prevents it",
    );
  } else {
    logger.info({ role: row.role }, "audit events are append-only for the application's database role by privilege");
  }
}

/**
 * An acknowledged event must survive a crash, and the service acknowledges on commit: that holds only if PostgreSQL
 * flushes commits (fsync) and waits for that flush before answering (synchronous_commit other than off). Both are
 * the server's defaults, but tuning guides turn them off; say so at start rather than lose events in a crash.
 */
async function checkDurability(sql: postgres.Sql, logger: Logger): Promise<void> {
  const [row] = await sql<{ synchronousCommit: string; fsync: string }[]>`
    select current_setting('synchronous_commit') as "synchronousCommit", current_setting('fsync') as fsync`;
  if (row && (row.synchronousCommit === "off" || row.fsync === "off")) {
    logger.error(
      { synchronous_commit: row.synchronousCommit, fsync: row.fsync },
      "PostgreSQL may lose committed transactions in a crash: acknowledged audit events are not durable",
    );
  }
}
