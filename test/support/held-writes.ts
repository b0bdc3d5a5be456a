import postgres from "postgres";
import { expect } from "vitest";

/**
 * A transaction holding a tenant's sequence row, as a slow commit would: every write to the tenant waits until
 * release(). `sql` has a second connection, to look at the database meanwhile (pg_stat_activity).
 */
export async function holdTenant(databaseUrl: string, tenant: string) {
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {}, connection: { application_name: "test-holder" } });
  const holder = await sql.reserve();
  await holder`begin`;
  const [row] = await holder`select tenant from tenant_sequences where tenant = ${tenant} for update`;
  expect(row, "the tenant has a sequence row to hold (it has stored an event)").toBeDefined();
  let released = false;
  return {
    sql,
    /** Ends the transaction; a second call does nothing. */
    async release() {
      if (released) return;
      released = true;
      await holder`rollback`;
      holder.release();
      await sql.end();
    },
  };
}

/** The value of a metric (summed over its samples whose labels include `labels`) from a GET of `url`. */
export async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? "").includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** Polls until `check` holds: it observes the service, so nothing waits for time to pass. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
