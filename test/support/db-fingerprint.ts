import type postgres from "postgres";

/**
 * A digest of every row of every table in the public schema, by table: equal fingerprints mean nothing was inserted,
 * updated or deleted in between. Tables added later are covered without a change here. With `tenant`, only the rows
 * of that tenant (tables with a `tenant` column, and the tenant's own row of `tenants`).
 */
export async function databaseFingerprint(
  sql: postgres.Sql,
  tenant?: string,
  options: { exceptServiceRecords?: boolean } = {},
): Promise<Record<string, string>> {
  const tables = await sql<{ name: string; tenantColumn: string | null }[]>`
    select t.table_name as name,
      (select c.column_name from information_schema.columns c
        where c.table_schema = 'public' and c.table_name = t.table_name
          and c.column_name = case when t.table_name = 'tenants' then 'id' else 'tenant' end) as "tenantColumn"
    from information_schema.tables t
    where t.table_schema = 'public' and t.table_type = 'BASE TABLE' order by t.table_name`;
  const out: Record<string, string> = {};
  for (const { name, tenantColumn } of tables) {
    if (tenant !== undefined && tenantColumn === null) continue;
    // The verifiable log's tree and checkpoints follow from the events (compared above) and advance with the service's
    // own records too; checkpoints are also signed on a timer.
    if (options.exceptServiceRecords && name.startsWith("log_")) continue;
    const conditions = [
      ...(tenant === undefined ? [] : [sql`${sql(tenantColumn as string)} = ${tenant}`]),
      // The service's own records (self-audit, category audit-trail.*), which clients cannot write, and the sequence
      // numbers they took: a refused call leaves one, and is otherwise expected to write nothing.
      ...(options.exceptServiceRecords && name === "events" ? [sql`category not like 'audit-trail.%'`] : []),
    ];
    const where = conditions.length === 0 ? sql`` : sql`where ${conditions.reduce((a, c) => sql`${a} and ${c}`)}`;
    const rows =
      options.exceptServiceRecords && name === "tenant_sequences"
        ? // A tenant whose only events are service records has no client events, as if it had no row at all.
          sql`(select * from (select s.tenant, s.last_sequence - (select count(*) from events e
            where e.tenant = s.tenant and e.category like 'audit-trail.%') as own from tenant_sequences s) c
            where own > 0)`
        : sql(name);
    const [row] = await sql<{ digest: string }[]>`
      select count(*) || ':' || md5(coalesce(string_agg(t::text, ',' order by t::text), '')) as digest
      from ${rows} t ${where}`;
    out[name] = row?.digest ?? "";
  }
  return out;
}

/** The tables whose fingerprints differ, e.g. "events (3:ab12… → 4:cd34…)". */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names]
    .filter((name) => before[name] !== after[name])
    .map((name) => `${name} (${before[name]} → ${after[name]})`);
}
