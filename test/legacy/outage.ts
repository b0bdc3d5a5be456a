import postgres from "postgres";
import type { TestApp } from "../support/app.js";

/**
 * Runs `fn` while one of the app's tables is renamed away, so every call that reads or writes it fails in the
 * database with an error the service does not expect (an internal error) while connections stay up. The table is put
 * back after.
 */
export async function whileTableMissing(
  app: TestApp,
  table: "events" | "tenant_sequences",
  fn: () => Promise<void>,
): Promise<void> {
  const sql = postgres(app.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`alter table ${sql(table)} rename to ${sql(`${table}_hidden`)}`;
    await fn();
  } finally {
    await sql`alter table ${sql(`${table}_hidden`)} rename to ${sql(table)}`;
    await sql.end();
  }
}
