import path from "node:path";

/** Every setting the service reads, with its default. The README's configuration table lists the same. */
export interface Config {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /**
   * A privileged role's URL for migrations. When set, the service migrates with it and grants DATABASE_URL's role
   * only what it needs (scripts/app-role.sql), so the application itself cannot rewrite the log.
   */
  migrationDatabaseUrl: string | undefined;
  dataDir: string;
  databasePoolSize: number;
  /** Most single-event appends (Create, Publish) one group commit writes. */
  groupCommitMaxBatch: number;
  /** Most appends waiting for a group commit before new ones are refused with RESOURCE_EXHAUSTED. */
  ingestQueueLimit: number;
  /** Most group commits in flight at once per process. */
  groupCommitFlushes: number;
  /** Unary gRPC calls with uncompressed protobuf bodies skip Connect's streaming plumbing (server/grpc-unary.ts). */
  grpcFastPath: boolean;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  logLevel: string;
  maxBodyBytes: number;
  requestTimeoutMs: number;
  shutdownGraceMs: number;
  adminToken: string | undefined;
  credentialCacheMs: number;
  /** Browser origins allowed to call the API (CORS); "*" for any, empty for none. */
  corsOrigins: string[];
  /** Matching events a Tail stream may have waiting before it is ended as too slow. */
  tailBufferEvents: number;
  /** The longest a Tail stream lives; then it ends with UNAVAILABLE/TAIL_LIFETIME_REACHED and resumes by sequence. */
  tailMaxLifetimeMs: number;
  /** Failed password checks per user, then per client address, before each further attempt must wait (0: no limit). */
  passwordFailuresPerUser: number;
  passwordFailuresPerAddress: number;
  /** The longest such wait; waits start at 1 s and double. */
  passwordDelayMaxMs: number;
  /** Password hashes (scrypt) computed at once, and how many more may wait before RESOURCE_EXHAUSTED. */
  passwordHashConcurrency: number;
  passwordHashQueue: number;
  /** Live sessions a user may hold; a Login beyond it revokes the oldest. */
  sessionsPerUser: number;
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const databaseUrl = env.DATABASE_URL || undefined;
  const migrationDatabaseUrl = env.MIGRATION_DATABASE_URL || undefined;
  if (migrationDatabaseUrl && !databaseUrl) {
    throw new Error("MIGRATION_DATABASE_URL needs DATABASE_URL: the embedded PostgreSQL has a single role");
  }
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: env.HOST ?? "0.0.0.0",
    databaseUrl,
    migrationDatabaseUrl,
    dataDir: path.resolve(env.DATA_DIR ?? ".data"),
    databasePoolSize: int(env, "DATABASE_POOL_SIZE", 10, 1, 1000),
    groupCommitMaxBatch: int(env, "GROUP_COMMIT_MAX_BATCH", 500, 1, 1000),
    ingestQueueLimit: int(env, "INGEST_QUEUE_LIMIT", 5000, 1, 1_000_000),
    groupCommitFlushes: int(env, "GROUP_COMMIT_FLUSHES", 2, 1, 64),
    grpcFastPath: bool(env, "GRPC_FAST_PATH", true),
    tlsCert: env.TLS_CERT || undefined,
    tlsKey: env.TLS_KEY || undefined,
    logLevel: env.LOG_LEVEL ?? "info",
    maxBodyBytes: int(env, "MAX_BODY_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    requestTimeoutMs: int(env, "REQUEST_TIMEOUT_MS", 30_000, 100, 3_600_000),
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    adminToken: env.AUDIT_ADMIN_TOKEN || undefined,
    credentialCacheMs: int(env, "CREDENTIAL_CACHE_MS", 5_000, 0, 3_600_000),
    corsOrigins: origins(env, "CORS_ORIGINS"),
    tailBufferEvents: int(env, "TAIL_BUFFER_EVENTS", 5_000, 1, 1_000_000),
    tailMaxLifetimeMs: int(env, "TAIL_MAX_LIFETIME_MS", 3_600_000, 1_000, 7 * 24 * 3_600_000),
    passwordFailuresPerUser: int(env, "PASSWORD_FAILURES_PER_USER", 5, 0, 1000),
    passwordFailuresPerAddress: int(env, "PASSWORD_FAILURES_PER_ADDRESS", 20, 0, 100_000),
    passwordDelayMaxMs: int(env, "PASSWORD_DELAY_MAX_MS", 900_000, 1_000, 86_400_000),
    passwordHashConcurrency: int(env, "PASSWORD_HASH_CONCURRENCY", 2, 1, 64),
    passwordHashQueue: int(env, "PASSWORD_HASH_QUEUE", 32, 0, 10_000),
    sessionsPerUser: int(env, "SESSIONS_PER_USER", 10, 1, 1000),
  };
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

/** A comma list of origins such as `https://app.example.com`, or `*`. */
function origins(env: Env, name: string): string[] {
  const list = (env[name] ?? "")
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of list) {
    if (origin !== "*" && URL.canParse(origin) && new URL(origin).origin === origin) continue;
    throw new Error(`${name} must be a comma list of origins like https://app.example.com, or *; got "${origin}"`);
  }
  return list;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}
