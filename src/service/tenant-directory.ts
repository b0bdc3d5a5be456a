import type { IdentityStore, TenantRow } from "../store/identity-store.js";
import { TENANT_PATTERN } from "./limits.js";

/** A numeric tenant id, as legacy APIs give it. */
const NUMERIC_ID = /^\d{1,18}$/;

/**
 * Which tenants exist. Tenants are never deleted, so a tenant once seen is remembered for the life of the process
 * and the per-call check costs no query.
 */
export class TenantDirectory {
  private readonly known = new Map<string, TenantRow>();

  constructor(private readonly store: IdentityStore) {}

  async exists(id: string): Promise<boolean> {
    return (await this.get(id)) !== undefined;
  }

  async get(id: string): Promise<TenantRow | undefined> {
    const hit = this.known.get(id);
    if (hit) return hit;
    // A key no tenant can have is not looked up: whatever a caller sends, only a plausible slug reaches SQL.
    if (!TENANT_PATTERN.test(id)) return undefined;
    const row = await this.store.getTenant(id);
    if (row) this.remember(row);
    return row;
  }

  /** By slug or by numeric id (legacy APIs address tenants by number). */
  async find(key: string): Promise<TenantRow | undefined> {
    const hit = this.known.get(key);
    if (hit) return hit;
    if (!TENANT_PATTERN.test(key) && !NUMERIC_ID.test(key)) return undefined;
    const row = await this.store.findTenant(key);
    if (row) this.remember(row);
    return row;
  }

  remember(row: TenantRow): void {
    if (this.known.size < 100_000) this.known.set(row.id, row);
  }
}
