import { and, asc, desc, eq, inArray, isNull, sql } from "drizzle-orm";
import type { Db } from "./database.js";
import { credentials, tenants } from "./schema.js";

/** audit.v1.CredentialKind.SESSION, as stored. */
const SESSION_KIND = 3;

export type TenantRow = typeof tenants.$inferSelect;
export type CredentialRow = typeof credentials.$inferSelect;
export type NewCredential = typeof credentials.$inferInsert;

/** Tenants and credentials. Secrets arrive here already hashed. */
export class IdentityStore {
  constructor(private readonly db: Db) {}

  /** The new tenant, or undefined when the slug is taken. */
  async createTenant(id: string, displayName: string, createdAt: string): Promise<TenantRow | undefined> {
    const [row] = await this.db
      .insert(tenants)
      .values({ id, displayName, createdAt })
      .onConflictDoNothing({ target: tenants.id })
      .returning();
    return row;
  }

  async getTenant(id: string): Promise<TenantRow | undefined> {
    const [row] = await this.db.select().from(tenants).where(eq(tenants.id, id));
    return row;
  }

  async getTenantByNumber(numericId: number): Promise<TenantRow | undefined> {
    const [row] = await this.db.select().from(tenants).where(eq(tenants.numericId, numericId));
    return row;
  }

  listTenants(only?: string): Promise<TenantRow[]> {
    return this.db
      .select()
      .from(tenants)
      .where(only === undefined ? undefined : eq(tenants.id, only))
      .orderBy(asc(tenants.numericId));
  }

  async insertCredential(row: NewCredential): Promise<CredentialRow | undefined> {
    const [stored] = await this.db.insert(credentials).values(row).onConflictDoNothing().returning();
    return stored;
  }

  /** An API key or session by the SHA-256 of its token. */
  async findByTokenHash(hash: Buffer): Promise<CredentialRow | undefined> {
    const [row] = await this.db
      .select()
      .from(credentials)
      .where(and(eq(credentials.secretHash, hash), sql`${credentials.kind} <> 2`));
    return row;
  }

  async findUser(tenant: string, username: string): Promise<CredentialRow | undefined> {
    const [row] = await this.db
      .select()
      .from(credentials)
      .where(and(eq(credentials.tenant, tenant), eq(credentials.name, username), eq(credentials.kind, 2)));
    return row;
  }

  async getCredential(id: string): Promise<CredentialRow | undefined> {
    const [row] = await this.db.select().from(credentials).where(eq(credentials.id, id));
    return row;
  }

  /** Revokes a credential and, for a user, every session issued to it. */
  async revoke(id: string, revokedAt: string): Promise<CredentialRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(credentials)
        .set({ revokedAt: sql`coalesce(${credentials.revokedAt}, ${revokedAt}::timestamptz)` })
        .where(eq(credentials.id, id))
        .returning();
      await tx
        .update(credentials)
        .set({ revokedAt })
        .where(and(eq(credentials.userId, id), isNull(credentials.revokedAt)));
      return row;
    });
  }

  /**
   * Revokes a user's unrevoked sessions beyond the newest `keep`, returning how many. Filtering by tenant and kind
   * lets it use credentials_tenant_idx.
   */
  async revokeOldSessions(tenant: string, userId: string, keep: number, revokedAt: string): Promise<number> {
    const older = this.db
      .select({ id: credentials.id })
      .from(credentials)
      .where(
        and(
          eq(credentials.tenant, tenant),
          eq(credentials.kind, SESSION_KIND),
          eq(credentials.userId, userId),
          isNull(credentials.revokedAt),
        ),
      )
      .orderBy(desc(credentials.createdAt), desc(credentials.id))
      .offset(keep);
    const revoked = await this.db
      .update(credentials)
      .set({ revokedAt })
      .where(and(inArray(credentials.id, older), isNull(credentials.revokedAt)))
      .returning({ id: credentials.id });
    return revoked.length;
  }

  listCredentials(tenant: string | null): Promise<CredentialRow[]> {
    return this.db
      .select()
      .from(credentials)
      .where(tenant === null ? isNull(credentials.tenant) : eq(credentials.tenant, tenant))
      .orderBy(asc(credentials.createdAt), asc(credentials.id));
  }

  async touch(id: string, lastUsedAt: string): Promise<void> {
    await this.db.update(credentials).set({ lastUsedAt }).where(eq(credentials.id, id));
  }

  /**
   * Installs or rotates the credential behind AUDIT_ADMIN_TOKEN. A new secret replaces whatever the row held (a
   * generated token, a revoked one); the same secret keeps its revocation, so a revoked token stays refused until
   * the variable is given a new value.
   */
  async upsertBootstrap(
    id: string,
    name: string,
    secretHash: Buffer,
    roles: number[],
    createdAt: string,
  ): Promise<CredentialRow | undefined> {
    const [row] = await this.db
      .insert(credentials)
      .values({ id, tenant: null, kind: 1, name, roles, secretHash, createdAt, tokenPrefix: "" })
      .onConflictDoUpdate({
        target: credentials.id,
        set: {
          name,
          roles,
          secretHash,
          tokenPrefix: "",
          createdAt: sql`case when ${credentials.secretHash} = excluded.secret_hash then ${credentials.createdAt} else excluded.created_at end`,
          revokedAt: sql`case when ${credentials.secretHash} = excluded.secret_hash then ${credentials.revokedAt} end`,
        },
      })
      .returning();
    return row;
  }

  /**
   * Revokes the credential `id` if AUDIT_ADMIN_TOKEN installed it (upsertBootstrap records no token prefix; a
   * generated token always has one) and it is live; the revoked row, or undefined.
   */
  async retireBootstrap(id: string, revokedAt: string): Promise<CredentialRow | undefined> {
    const [row] = await this.db
      .update(credentials)
      .set({ revokedAt })
      .where(and(eq(credentials.id, id), eq(credentials.tokenPrefix, ""), isNull(credentials.revokedAt)))
      .returning();
    return row;
  }

  /**
   * Stores a generated bootstrap credential unless a live one with its id exists (another instance got there
   * first); a revoked one is replaced. The stored row, or undefined.
   */
  async replaceRevoked(row: NewCredential): Promise<CredentialRow | undefined> {
    const { id: _, ...fields } = row;
    const [stored] = await this.db
      .insert(credentials)
      .values(row)
      .onConflictDoUpdate({ target: credentials.id, set: fields, setWhere: sql`${credentials.revokedAt} is not null` })
      .returning();
    return stored;
  }

  /** Which database this is, the same through any URL: its cluster's system identifier and its name. */
  async databaseIdentity(): Promise<{ systemIdentifier: string; database: string }> {
    const rows = await this.db.execute<{ system_identifier: string; database: string }>(
      sql`select system_identifier::text, current_database() as database from pg_control_system()`,
    );
    const [row] = rows;
    if (!row) throw new Error("pg_control_system() returned no row");
    return { systemIdentifier: row.system_identifier, database: row.database };
  }

  async hasGlobalCredential(): Promise<boolean> {
    const [row] = await this.db
      .select({ id: credentials.id })
      .from(credentials)
      .where(and(isNull(credentials.tenant), isNull(credentials.revokedAt)))
      .limit(1);
    return row !== undefined;
  }
}
