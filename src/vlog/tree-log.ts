import type postgres from "postgres";
import type { AppendLog, EventRow, RangeQuery } from "../store/event-store.js";
import { Edge, type FullTile, type TileSource } from "./tiles.js";

/**
 * The per-tenant Merkle trees in PostgreSQL (store floor: it knows rows and SQL, not protobuf). The leaf data of an
 * event is given by `leafData`, which the service floor supplies (src/vlog/leaf.ts: the event as List returns it), so
 * the store never imports service code.
 *
 * Writes: `commit` runs inside every append transaction, after the events are inserted and with their tenants'
 * tenant_sequences rows locked, and advances each tenant's tree by exactly the events stored, in sequence order: one
 * call of audit_log_advance (drizzle/0006_verifiable_log.sql) pipelined with COMMIT. The edge this process last wrote
 * is kept in memory and used only while the tree's size is the one it left (leaf index = sequence − 1, so the first
 * new sequence tells); otherwise the head is read inside the transaction, and a head that is not at
 * first sequence − 1 fails the write: the events were changed outside the service.
 */
export class TreeLog implements AppendLog {
  /** Edges as committed by this process, by tenant; at most EDGES_KEPT. */
  private readonly edges = new Map<string, Edge>();

  constructor(
    private readonly sql: postgres.Sql,
    /** An event's leaf data, as bytes or as text (its UTF-8 bytes). */
    private readonly leafData: (row: EventRow) => Uint8Array | string,
  ) {}

  async commit(tx: postgres.ReservedSql, stored: EventRow[]): Promise<void> {
    const byTenant = new Map<string, EventRow[]>();
    for (const row of stored) {
      const rows = byTenant.get(row.tenant) ?? [];
      rows.push(row);
      byTenant.set(row.tenant, rows);
    }
    const from = new Map<string, number>();
    for (const [tenant, rows] of byTenant) {
      rows.sort((a, b) => a.sequence - b.sequence);
      from.set(tenant, (rows[0] as EventRow).sequence - 1);
    }
    const unknown = [...from].filter(([tenant, size]) => this.edges.get(tenant)?.size !== size).map(([t]) => t);
    const edges = new Map<string, Edge>();
    if (unknown.length > 0) {
      for (const [tenant, edge] of await readHeads(tx, unknown)) this.edges.set(tenant, edge);
    }
    const full: (FullTile & { tenant: string })[] = [];
    for (const [tenant, rows] of byTenant) {
      const size = from.get(tenant) as number;
      const known = this.edges.get(tenant) ?? Edge.empty();
      if (known.size !== size) {
        throw diverging(
          `the verifiable log of tenant ${tenant} holds ${known.size} events, but its events reach ${size}`,
        );
      }
      const edge = known.copy();
      const filled: FullTile[] = [];
      for (const row of rows) edge.appendLeaf(this.leafData(row), filled);
      for (const tile of filled) full.push({ tenant, ...tile });
      edges.set(tenant, edge);
    }
    await Promise.all([advance(tx, from, edges, full), tx`commit`]);
    for (const [tenant, edge] of edges) this.remember(tenant, edge);
  }

  /**
   * Brings every tenant's tree up to its last sequence: events stored before the log existed (the migration that
   * adds it, in sequence order), or while an instance ran with VERIFIABLE_LOG=false. Each tenant under its
   * tenant_sequences row lock, so writers wait rather than race. A tenant whose tree cannot be built (a sequence
   * without its event, a tree longer than the events: the database was changed behind the service) is left as it is
   * and reported to `diverged`; its writes fail until an operator repairs it, the other tenants' go on. Returns the
   * events added.
   */
  async catchUp(
    read: (q: RangeQuery) => Promise<EventRow[]>,
    diverged: (tenant: string, error: Error) => void,
    chunk = 5000,
  ): Promise<number> {
    const lagging = await this.sql<{ tenant: string }[]>`
      select s.tenant from tenant_sequences s left join log_heads h using (tenant)
      where s.last_sequence <> coalesce(h.size, 0) order by s.tenant
    `;
    let added = 0;
    for (const { tenant } of lagging) {
      const tx = await this.sql.reserve();
      try {
        await tx`begin`;
        const [locked] = await tx<{ last: string }[]>`
          select last_sequence as last from tenant_sequences where tenant = ${tenant} for update
        `;
        const last = Number(locked?.last ?? 0);
        let edge = (await readHeads(tx, [tenant])).get(tenant) ?? Edge.empty();
        if (edge.size > last) {
          throw diverging(`the verifiable log of tenant ${tenant} holds ${edge.size} events, more than its ${last}`);
        }
        while (edge.size < last) {
          const rows = await read({
            tenant,
            afterSequence: edge.size,
            throughSequence: last,
            nowMicros: 0n,
            limit: chunk,
          });
          const next = edge.copy();
          const filled: FullTile[] = [];
          for (const row of rows) {
            if (row.sequence !== next.size + 1) break;
            next.appendLeaf(this.leafData(row), filled);
          }
          if (next.size === edge.size) {
            throw diverging(`tenant ${tenant} has no event at sequence ${next.size + 1}; its log cannot be built`);
          }
          await advance(
            tx,
            new Map([[tenant, edge.size]]),
            new Map([[tenant, next]]),
            filled.map((tile) => ({ tenant, ...tile })),
          );
          added += next.size - edge.size;
          edge = next;
        }
        await tx`commit`;
        this.remember(tenant, edge);
      } catch (error) {
        await tx`rollback`.catch(() => {});
        if ((error as { code?: string }).code !== TREE_DIVERGED) throw error;
        diverged(tenant, error as Error);
      } finally {
        tx.release();
      }
    }
    return added;
  }

  /**
   * A tenant's tree as committed now: its size, and the tiles that `wanted` (level, index) names, read in one
   * statement so the edge and the full tiles are of one moment.
   */
  async snapshot(
    tenant: string,
    wanted: { level: number; index: number }[],
  ): Promise<{ size: number; tiles: TileSource }> {
    const rows = await this.sql<{ level: number; index: string; hashes: Buffer }[]>`
      select -1 as level, size as index, edge as hashes from log_heads where tenant = ${tenant}
      union all
      select level, index, hashes from log_tiles
      where tenant = ${tenant}
        and (level, index) in (
          select * from unnest(${wanted.map((w) => w.level)}::smallint[], ${wanted.map((w) => w.index)}::bigint[]))
    `;
    const head = rows.find((r) => r.level === -1);
    const size = Number(head?.index ?? 0);
    const edge = head ? Edge.decode(size, head.hashes) : Edge.empty();
    const full = new Map(rows.filter((r) => r.level !== -1).map((r) => [`${r.level}/${r.index}`, r.hashes]));
    const partial = edge.tiles();
    return { size, tiles: (level, index) => full.get(`${level}/${index}`) ?? partial(level, index) };
  }

  /** The latest signed checkpoint of a tenant. */
  async latestCheckpoint(tenant: string): Promise<{ size: number; note: string } | undefined> {
    const [row] = await this.sql<{ size: string; note: string }[]>`
      select size, note from log_checkpoints where tenant = ${tenant} order by size desc limit 1
    `;
    return row && { size: Number(row.size), note: row.note };
  }

  /** Keeps a signed checkpoint; one of a size already kept stays as it is (signatures of one key are deterministic). */
  async saveCheckpoint(tenant: string, size: number, note: string, signedAt: string): Promise<void> {
    await this.sql`
      insert into log_checkpoints (tenant, size, note, signed_at) values (${tenant}, ${size}, ${note}, ${signedAt})
      on conflict do nothing
    `;
  }

  /** Tenants whose tree has grown past their latest checkpoint, at most `limit`. */
  async unsigned(limit: number): Promise<string[]> {
    const rows = await this.sql<{ tenant: string }[]>`
      select h.tenant from log_heads h
      where h.size > coalesce((select max(c.size) from log_checkpoints c where c.tenant = h.tenant), 0)
      order by h.tenant limit ${limit}
    `;
    return rows.map((r) => r.tenant);
  }

  private remember(tenant: string, edge: Edge): void {
    this.edges.delete(tenant);
    this.edges.set(tenant, edge);
    if (this.edges.size > EDGES_KEPT) this.edges.delete(this.edges.keys().next().value as string);
  }
}

/** data_corrupted, as audit_log_advance raises it too: a tenant's tree and its events disagree. */
const TREE_DIVERGED = "XX001";

function diverging(message: string): Error {
  return Object.assign(new Error(message), { code: TREE_DIVERGED });
}

/** Tenants whose edges a process keeps; beyond it the least recently written is read again when next written. */
const EDGES_KEPT = 10_000;

async function readHeads(tx: postgres.ReservedSql, tenants: string[]): Promise<Map<string, Edge>> {
  const rows = await tx<{ tenant: string; size: string; edge: Buffer }[]>`
    select tenant, size, edge from log_heads where tenant = any(${tenants}::text[])
  `;
  return new Map(rows.map((r) => [r.tenant, Edge.decode(Number(r.size), r.edge)]));
}

/**
 * A bytea[] argument from one bytea parameter and each element's start and length, cut apart by PostgreSQL. The
 * edges are kilobytes of hashes every write: sent as a text[] of hex, PostgreSQL parsed them as an array of text
 * before decoding each, which cost it about as much as the tree's row update (docs/performance.md, "What a flush
 * costs PostgreSQL").
 */
function byteaArray(tx: postgres.ReservedSql, parts: Buffer[]) {
  const starts: number[] = [];
  let at = 0;
  for (const part of parts) {
    starts.push(at);
    at += part.length;
  }
  return tx`array(
    select substring(${Buffer.concat(parts)}::bytea from s + 1 for l)
    from unnest(${starts}::int[], ${parts.map((p) => p.length)}::int[]) with ordinality as x(s, l, i) order by i)`;
}

function advance(
  tx: postgres.ReservedSql,
  from: Map<string, number>,
  edges: Map<string, Edge>,
  full: (FullTile & { tenant: string })[],
) {
  const tenants = [...edges.keys()];
  const edgeBytes = byteaArray(
    tx,
    tenants.map((t) => (edges.get(t) as Edge).encode()),
  );
  const tileBytes = byteaArray(
    tx,
    full.map((t) => t.hashes),
  );
  return tx`
    select audit_log_advance(
      ${tenants}::text[], ${tenants.map((t) => from.get(t) ?? 0)}::bigint[],
      ${tenants.map((t) => (edges.get(t) as Edge).size)}::bigint[], ${edgeBytes},
      ${full.map((t) => t.tenant)}::text[], ${full.map((t) => t.level)}::smallint[], ${full.map((t) => t.index)}::bigint[],
      ${tileBytes})
  `;
}
