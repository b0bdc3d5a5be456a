import type { IdentityStore, TenantRow } from "../store/identity-store.js";
import { NUMERIC_TENANT_ID, SYSTEM_TENANT, TENANT_PATTERN } from "./limits.js";

/**
 * The system tenant has no row in `tenants`: nothing refers to it but its events, it is not listed by ListTenants,
 * and legacy APIs (which address tenants by slug or number through find()) cannot reach it.
 */
const systemTenant: TenantRow = {
  id: SYSTEM_TENANT,
  numericId: 0,
  displayName: "audit-trail's own records",
  createdAt: "1970-01-01 00:00:00+00",
};

/**
 * Which tenants exist. Tenants are never deleted, so a tenant once seen is remembered for the life of the process
 * and the per-call check costs no query.
 */
export class TenantDirectory {
  private readonly known = new Map<string, TenantRow>();
  private readonly byNumber = new Map<number, TenantRow>();

  constructor(private readonly store: IdentityStore) {}

  async exists(id: string): Promise<boolean> {
    return (await this.get(id)) !== undefined;
  }

  async get(id: string): Promise<TenantRow | undefined> {
    if (id === SYSTEM_TENANT) return systemTenant;
    const hit = this.known.get(id);
    if (hit) return hit;
    // A key no tenant can have is not looked up: whatever a caller sends, only a plausible slug reaches SQL.
    if (!TENANT_PATTERN.test(id)) return undefined;
    const row = await this.store.getTenant(id);
    if (row) this.remember(row);
    return row;
  }

  /**
   * By numeric id when `key` is all digits (legacy APIs address tenants by number), else by slug. An all-digit key
   * is never a slug, so creating a tenant cannot change which tenant an existing key names (docs/auth.md).
   */
  async find(key: string): Promise<TenantRow | undefined> {
    if (NUMERIC_TENANT_ID.test(key)) {
      const number = Number(key);
      const hit = this.byNumber.get(number);
      if (hit) return hit;
      const row = await this.store.getTenantByNumber(number);
      if (row) this.remember(row);
      return row;
    }
    return this.get(key);
  }

  remember(row: TenantRow): void {
    if (this.known.size >= 100_000) return;
    this.known.set(row.id, row);
    this.byNumber.set(row.numericId, row);
  }
}
