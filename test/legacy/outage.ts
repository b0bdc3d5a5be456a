import postgres from "postgres";
import type { TestApp } from "../support/app.js";

/**
 * Runs `fn` while the app's `credentials` table is renamed away, so every call fails in the database with an error
 * the service does not expect (an internal error) while connections stay up. The table is put back after.
 */
export async function whileCredentialsTableMissing(app: TestApp, fn: () => Promise<void>): Promise<void> {
  const sql = postgres(app.databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`alter table credentials rename to credentials_hidden`;
    await fn();
  } finally {
    await sql`alter table credentials_hidden rename to credentials`;
    await sql.end();
  }
}
