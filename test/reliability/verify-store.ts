import postgres from "postgres";
import type { Attempt } from "./load.js";

/** What the database holds, measured against every call the clients made. */
export interface StoreCheck {
  /** Clients' rows in events for the tenants checked. */
  stored: number;
  /**
   * The service's own records among the tenants' rows (self-audit: category `audit-trail.*`, e.g. the provisioning
   * of the tenant and its keys). They are not clients' events, but they take sequences, so the gapless check counts them.
   */
  serviceRecords: number;
  /** Events of acknowledged calls, and how many of those were found (exactly once, with the acknowledged sequence). */
  ackedEvents: number;
  ackedFound: number;
  /** Acknowledged event ids stored zero times, more than once, or under another sequence than the one answered. */
  lost: string[];
  duplicated: string[];
  wrongSequence: string[];
  /** Unacknowledged calls stored whole (committed before the crash) or not at all, and their event counts. */
  unackedWholeCalls: number;
  unackedWholeEvents: number;
  unackedAbsentCalls: number;
  /** Unacknowledged calls stored in part: must never happen. */
  partialCalls: number;
  /** Stored ids no call sent. */
  unknown: number;
  /** Per tenant: rows, highest sequence, and whether sequences are exactly 1..rows and match tenant_sequences. */
  tenants: { tenant: string; rows: number; max: number; gapless: boolean }[];
}

export async function checkStore(databaseUrl: string, attempts: Attempt[]): Promise<StoreCheck> {
  const tenants = [...new Set(attempts.map((a) => a.tenant))];
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ tenant: string; id: string; sequence: string; service: boolean }[]>`
      select tenant, id, sequence, category like 'audit-trail.%' as service
      from events where tenant = any(${tenants}) order by tenant, sequence`;
    const clientRows = rows.filter((row) => !row.service);
    const counters = await sql<{ tenant: string; last: string }[]>`
      select tenant, last_sequence as last from tenant_sequences where tenant = any(${tenants})`;
    const byId = new Map<string, number[]>();
    for (const row of clientRows) {
      const key = `${row.tenant}/${row.id}`;
      byId.set(key, [...(byId.get(key) ?? []), Number(row.sequence)]);
    }
    const check: StoreCheck = {
      stored: clientRows.length,
      serviceRecords: rows.length - clientRows.length,
      ackedEvents: 0,
      ackedFound: 0,
      lost: [],
      duplicated: [],
      wrongSequence: [],
      unackedWholeCalls: 0,
      unackedWholeEvents: 0,
      unackedAbsentCalls: 0,
      partialCalls: 0,
      unknown: 0,
      tenants: [],
    };
    const sent = new Set<string>();
    for (const attempt of attempts) {
      const found = attempt.events.map((e) => byId.get(`${attempt.tenant}/${e.id}`) ?? []);
      for (const e of attempt.events) sent.add(`${attempt.tenant}/${e.id}`);
      for (const [i, seqs] of found.entries()) {
        if (seqs.length > 1) check.duplicated.push(attempt.events[i]?.id ?? "");
      }
      if (attempt.outcome === "acked") {
        check.ackedEvents += attempt.events.length;
        for (const [i, seqs] of found.entries()) {
          const id = attempt.events[i]?.id ?? "";
          if (seqs.length === 0) check.lost.push(id);
          else if (seqs.length === 1 && seqs[0] !== attempt.sequences?.[i]) check.wrongSequence.push(id);
          else if (seqs.length === 1) check.ackedFound += 1;
        }
      } else {
        const present = found.filter((seqs) => seqs.length > 0).length;
        if (present === 0) check.unackedAbsentCalls += 1;
        else if (present === attempt.events.length) {
          check.unackedWholeCalls += 1;
          check.unackedWholeEvents += present;
        } else check.partialCalls += 1;
      }
    }
    for (const key of byId.keys()) if (!sent.has(key)) check.unknown += 1;
    for (const tenant of tenants) {
      const sequences = rows.filter((r) => r.tenant === tenant).map((r) => Number(r.sequence));
      const last = Number(counters.find((c) => c.tenant === tenant)?.last ?? 0);
      const gapless = sequences.every((s, i) => s === i + 1) && last === sequences.length;
      check.tenants.push({ tenant, rows: sequences.length, max: sequences.at(-1) ?? 0, gapless });
    }
    return check;
  } finally {
    await sql.end();
  }
}

/** "sequences 1..N gapless" per tenant, for the summary lines. */
export function describeSequences(check: StoreCheck): string {
  return check.tenants
    .map((t) => `${t.tenant} 1..${t.max} ${t.gapless ? "gapless" : `NOT gapless (${t.rows} rows)`}`)
    .join(", ");
}
