import { and, asc, count, eq, sql } from "drizzle-orm";
import type { Db } from "./database.js";
import { eventTemplates } from "./schema.js";

export type TemplateRow = typeof eventTemplates.$inferSelect;
export type NewTemplate = Omit<TemplateRow, "createdAt">;

export type CreateTemplateResult = { ok: true; template: TemplateRow } | { ok: false; problem: "exists" | "limit" };

/** A tenant's event templates. */
export class TemplateStore {
  constructor(
    private readonly db: Db,
    private readonly maxPerTenant: number,
  ) {}

  async create(template: NewTemplate, createdAt: string): Promise<CreateTemplateResult> {
    return this.db.transaction(async (tx) => {
      // Serialises creations in one tenant so the count below cannot race another creation past the limit.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`event_templates:${template.tenant}`}, 0))`);
      const [existing] = await tx
        .select({ name: eventTemplates.name })
        .from(eventTemplates)
        .where(and(eq(eventTemplates.tenant, template.tenant), eq(eventTemplates.name, template.name)));
      if (existing) return { ok: false, problem: "exists" };
      const [counted] = await tx
        .select({ n: count() })
        .from(eventTemplates)
        .where(eq(eventTemplates.tenant, template.tenant));
      if ((counted?.n ?? 0) >= this.maxPerTenant) return { ok: false, problem: "limit" };
      const [row] = await tx
        .insert(eventTemplates)
        .values({ ...template, createdAt })
        .returning();
      if (!row) throw new Error("template insert returned no row");
      return { ok: true, template: row };
    });
  }

  async get(tenant: string, name: string): Promise<TemplateRow | undefined> {
    const [row] = await this.db
      .select()
      .from(eventTemplates)
      .where(and(eq(eventTemplates.tenant, tenant), eq(eventTemplates.name, name)));
    return row;
  }

  /** Every template of the tenant, by name; at most maxPerTenant. */
  async list(tenant: string): Promise<TemplateRow[]> {
    return this.db
      .select()
      .from(eventTemplates)
      .where(eq(eventTemplates.tenant, tenant))
      .orderBy(asc(eventTemplates.name));
  }

  /** False when there was no such template. */
  async delete(tenant: string, name: string): Promise<boolean> {
    const rows = await this.db
      .delete(eventTemplates)
      .where(and(eq(eventTemplates.tenant, tenant), eq(eventTemplates.name, name)))
      .returning({ name: eventTemplates.name });
    return rows.length > 0;
  }
}
