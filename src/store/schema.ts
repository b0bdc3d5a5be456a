import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  customType,
  index,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";

const bytea = customType<{ data: Buffer }>({ dataType: () => "bytea" });

// Timestamps travel as strings so microseconds survive; JS Date would cut them to milliseconds.
const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: "string", precision: 6 });

/**
 * The audit log. Append-only: a trigger (see drizzle/0001_append_only.sql) refuses UPDATE, DELETE and TRUNCATE.
 * Each index is named for the List query it serves; docs/storage.md shows their EXPLAIN plans.
 */
export const events = pgTable(
  "events",
  {
    tenant: text("tenant").notNull(),
    sequence: bigint("sequence", { mode: "number" }).notNull(),
    id: text("id").notNull(),
    occurredAt: timestamptz("occurred_at").notNull(),
    receivedAt: timestamptz("received_at").notNull(),
    completedAt: timestamptz("completed_at"),
    expiresAt: timestamptz("expires_at"),
    source: text("source").notNull().default(""),
    action: text("action").notNull(),
    category: text("category").notNull().default(""),
    actorId: text("actor_id").notNull().default(""),
    actorType: text("actor_type").notNull().default(""),
    actorName: text("actor_name").notNull().default(""),
    actorEmail: text("actor_email").notNull().default(""),
    actorRoles: text("actor_roles").array().notNull().default(sql`'{}'::text[]`),
    targetId: text("target_id").notNull().default(""),
    targetType: text("target_type").notNull().default(""),
    targetName: text("target_name").notNull().default(""),
    outcomeStatus: smallint("outcome_status").notNull().default(0),
    outcomeCode: text("outcome_code").notNull().default(""),
    outcomeMessage: text("outcome_message").notNull().default(""),
    request: jsonb("request"),
    attributes: jsonb("attributes"),
    parentId: text("parent_id").notNull().default(""),
    // SHA-256 of the event as the client sent it: a replay with the same id must match it.
    contentHash: bytea("content_hash").notNull(),
  },
  (t) => [
    primaryKey({ name: "events_pkey", columns: [t.tenant, t.sequence] }),
    uniqueIndex("events_tenant_id_key").on(t.tenant, t.id),
    // Time window and plain pages: WHERE tenant = ? AND occurred_at in [a, b) ORDER BY occurred_at, sequence.
    index("events_tenant_time_idx").on(t.tenant, t.occurredAt, t.sequence),
    // actor_id filter: WHERE tenant = ? AND actor_id = ? ORDER BY occurred_at, sequence.
    index("events_tenant_actor_time_idx").on(t.tenant, t.actorId, t.occurredAt, t.sequence),
    // actor_name filter (the legacy `GET /audit?userName=`): as many distinct values as actor_id, so walking the time
    // index for a rare name would read the tenant's whole log.
    index("events_tenant_actor_name_time_idx").on(t.tenant, t.actorName, t.occurredAt, t.sequence),
    // actions filter, exact or prefix (LIKE 'x%' needs text_pattern_ops).
    index("events_tenant_action_idx").on(t.tenant, t.action.op("text_pattern_ops"), t.occurredAt),
    // target filter: WHERE tenant = ? AND target_id = ? [AND target_type = ?].
    index("events_tenant_target_idx").on(t.tenant, t.targetId, t.targetType, t.occurredAt),
    // parent_id filter and the children-excluded default.
    index("events_tenant_parent_idx")
      .on(t.tenant, t.parentId, t.occurredAt, t.sequence)
      .where(sql`${t.parentId} <> ''`),
  ],
);

/** The last sequence handed out per tenant. Its row lock serialises writers of one tenant, so sequences are gapless. */
export const tenantSequences = pgTable("tenant_sequences", {
  tenant: text("tenant").primaryKey(),
  lastSequence: bigint("last_sequence", { mode: "number" }).notNull(),
});

/** Secrets the instances sharing this database must agree on (the page-token key). */
export const serverSecrets = pgTable("server_secrets", {
  name: text("name").primaryKey(),
  value: bytea("value").notNull(),
});

/** Tenants: a slug and a stable number (some legacy APIs expose numeric account ids). */
export const tenants = pgTable("tenants", {
  id: text("id").primaryKey(),
  numericId: bigint("numeric_id", { mode: "number" }).generatedAlwaysAsIdentity().notNull().unique(),
  displayName: text("display_name").notNull().default(""),
  createdAt: timestamptz("created_at").notNull(),
});

/**
 * API keys, users and sessions. Only hashes are stored: SHA-256 of high-entropy tokens, scrypt with a per-user salt
 * for passwords. `tenant` is null for global (superadmin) credentials.
 */
export const credentials = pgTable(
  "credentials",
  {
    id: text("id").primaryKey(),
    tenant: text("tenant").references(() => tenants.id),
    /** audit.v1.CredentialKind. */
    kind: smallint("kind").notNull(),
    /** Key name, or user name for users and sessions. */
    name: text("name").notNull(),
    /** audit.v1.Role values. */
    roles: smallint("roles").array().notNull(),
    secretHash: bytea("secret_hash").notNull(),
    /** scrypt salt, users only. */
    salt: bytea("salt"),
    tokenPrefix: text("token_prefix").notNull().default(""),
    /** The user a session was issued to. */
    userId: text("user_id"),
    rememberMe: boolean("remember_me").notNull().default(false),
    createdAt: timestamptz("created_at").notNull(),
    expiresAt: timestamptz("expires_at"),
    revokedAt: timestamptz("revoked_at"),
    lastUsedAt: timestamptz("last_used_at"),
  },
  (t) => [
    // Token lookup (API keys, sessions).
    uniqueIndex("credentials_secret_hash_key").on(t.secretHash).where(sql`${t.kind} <> 2`),
    // One user name per tenant.
    uniqueIndex("credentials_tenant_user_key").on(t.tenant, t.name).where(sql`${t.kind} = 2`),
    index("credentials_tenant_idx").on(t.tenant, t.kind),
  ],
);

/** A template attribute as stored: the AttributeType name without its prefix. */
export interface StoredTemplateAttribute {
  name: string;
  type: "STRING" | "INTEGER" | "FLOAT" | "BOOLEAN" | "TIMESTAMP";
  required: boolean;
}

/**
 * Event templates that Publish checks attributes against. Deleting one leaves past events untouched: a published
 * event carries its typed attributes itself and never refers back to its template.
 */
export const eventTemplates = pgTable(
  "event_templates",
  {
    tenant: text("tenant")
      .notNull()
      .references(() => tenants.id),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    // Ordered as created; a template is read and written whole, so one jsonb column beats a child table.
    attributes: jsonb("attributes").$type<StoredTemplateAttribute[]>().notNull(),
    defaultTtlMinutes: bigint("default_ttl_minutes", { mode: "number" }).notNull().default(0),
    createdAt: timestamptz("created_at").notNull(),
  },
  (t) => [primaryKey({ name: "event_templates_pkey", columns: [t.tenant, t.name] })],
);

/**
 * The verifiable log's tree per tenant (src/vlog/, docs/verifiable-log.md): its size and right edge, rewritten with
 * every append in the same transaction, under the tenant_sequences row lock, so `size` always equals last_sequence.
 * `edge` is each level's partial tile of hashes, level 0 first (widths follow from the size).
 */
export const logHeads = pgTable("log_heads", {
  tenant: text("tenant").primaryKey(),
  size: bigint("size", { mode: "number" }).notNull(),
  edge: bytea("edge").notNull(),
});

/** Full tiles of the tree (C2SP tlog-tiles): 256 hashes of 32 bytes each, written once when they fill. */
export const logTiles = pgTable(
  "log_tiles",
  {
    tenant: text("tenant").notNull(),
    level: smallint("level").notNull(),
    index: bigint("index", { mode: "number" }).notNull(),
    hashes: bytea("hashes").notNull(),
  },
  (t) => [primaryKey({ name: "log_tiles_pkey", columns: [t.tenant, t.level, t.index] })],
);

/** Signed checkpoints, one per tenant and size: what GetCheckpoint serves; kept so every size signed stays provable. */
export const logCheckpoints = pgTable(
  "log_checkpoints",
  {
    tenant: text("tenant").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    note: text("note").notNull(),
    signedAt: timestamptz("signed_at").notNull(),
  },
  (t) => [primaryKey({ name: "log_checkpoints_pkey", columns: [t.tenant, t.size] })],
);
