import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { parseSignerKey } from "./vlog/note.js";

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
  /** Refuse to start when DATABASE_URL's role could rewrite events (a superuser, the owner, UPDATE/DELETE grants). */
  requireLeastPrivilege: boolean;
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
  /** A port of its own for GET /metrics; undefined serves it on the main port. */
  metricsPort: number | undefined;
  /** Label events-stored counts with the tenant id (one series per tenant: off by default). */
  metricsTenantLabels: boolean;
  /** Export spans over OTLP/HTTP (protobuf), as the standard OTEL_* variables ask; off costs nothing. */
  tracing: boolean;
  /** Tail streams one credential may have open at once (per process). */
  tailStreamsPerCredential: number;
  /** Tail streams this process serves at once, all callers together. */
  tailStreamsTotal: number;
  /** Streams a client may have open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  http2MaxConcurrentStreams: number;
  /** Most bytes of audits (children included) one Universal Controller audit list holds and answers. */
  legacyListMaxBytes: number;
  /** Keep the per-tenant Merkle trees and sign checkpoints (docs/verifiable-log.md). */
  verifiableLog: boolean;
  /** The note signer key (PRIVATE+KEY+name+id+key); undefined: generated once into DATA_DIR. */
  logSigningKey: string | undefined;
  /** How often a tenant whose tree has grown gets a new signed checkpoint. */
  logCheckpointIntervalMs: number;
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const databaseUrl = postgresUrl(env, "DATABASE_URL");
  const migrationDatabaseUrl = postgresUrl(env, "MIGRATION_DATABASE_URL");
  if (migrationDatabaseUrl && !databaseUrl) {
    throw new ConfigError(
      "MIGRATION_DATABASE_URL",
      maskSecrets(migrationDatabaseUrl),
      "needs DATABASE_URL as well (the embedded PostgreSQL has its own owner and service roles): set DATABASE_URL, or unset this",
    );
  }
  const tls = tlsFiles(env, "TLS_CERT", "TLS_KEY");
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: host(env, "HOST", "0.0.0.0"),
    databaseUrl,
    migrationDatabaseUrl,
    requireLeastPrivilege: bool(env, "REQUIRE_LEAST_PRIVILEGE", false),
    dataDir: directory(env, "DATA_DIR", ".data"),
    databasePoolSize: int(env, "DATABASE_POOL_SIZE", 10, 1, 1000),
    groupCommitMaxBatch: int(env, "GROUP_COMMIT_MAX_BATCH", 500, 1, 1000),
    ingestQueueLimit: int(env, "INGEST_QUEUE_LIMIT", 5000, 1, 1_000_000),
    groupCommitFlushes: int(env, "GROUP_COMMIT_FLUSHES", 2, 1, 64),
    grpcFastPath: bool(env, "GRPC_FAST_PATH", true),
    tlsCert: tls?.cert,
    tlsKey: tls?.key,
    logLevel: oneOf(env, "LOG_LEVEL", "info", ["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    maxBodyBytes: int(env, "MAX_BODY_BYTES", 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    requestTimeoutMs: int(env, "REQUEST_TIMEOUT_MS", 30_000, 100, 3_600_000),
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    adminToken: secretToken(env, "AUDIT_ADMIN_TOKEN", 128),
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
    metricsPort: env.METRICS_PORT ? int(env, "METRICS_PORT", 0, 0, 65535) : undefined,
    metricsTenantLabels: bool(env, "METRICS_TENANT_LABELS", false),
    tracing: tracing(env),
    tailStreamsPerCredential: int(env, "TAIL_STREAMS_PER_CREDENTIAL", 16, 1, 100_000),
    tailStreamsTotal: int(env, "TAIL_STREAMS_TOTAL", 1_000, 1, 1_000_000),
    http2MaxConcurrentStreams: int(env, "HTTP2_MAX_CONCURRENT_STREAMS", 256, 1, 1_000_000),
    legacyListMaxBytes: int(env, "LEGACY_LIST_MAX_BYTES", 16 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    verifiableLog: bool(env, "VERIFIABLE_LOG", true),
    logSigningKey: signerKey(env, "LOG_SIGNING_KEY"),
    logCheckpointIntervalMs: int(env, "LOG_CHECKPOINT_INTERVAL_MS", 60_000, 1_000, 86_400_000),
  };
}

/**
 * A setting, or the database a setting names, that the service cannot start with. The message is the one line
 * start-up prints (src/main.ts): the variable, its value with any password masked, and what to do.
 */
export class ConfigError extends Error {
  /** `value` undefined: the variable is unset; `secret`: only the value's length is shown. */
  constructor(
    readonly variable: string,
    value: string | undefined,
    problem: string,
    options: { secret?: boolean } = {},
  ) {
    const described =
      value === undefined
        ? " is unset"
        : options.secret
          ? ` (${value.length} characters, not shown)`
          : `=${quoted(value)}`;
    super(`${variable}${described}: ${problem}`);
    this.name = "ConfigError";
  }
}

/** Quoted, escaped (so the message stays one line) and cut short. */
function quoted(value: string): string {
  const json = JSON.stringify(value);
  return json.length > 200 ? `${json.slice(0, 199)}…"` : json;
}

/**
 * A URL with its password, in the authority or as a `password` parameter, replaced by ****; on text that does not
 * parse too, so everything up to the last @ is taken for the password (an unencoded @ or / in it stays hidden).
 */
export function maskSecrets(url: string): string {
  return url.replace(/(\/\/[^:/?#@]*:)[\s\S]*@/, "$1****@").replace(/([?&]password=)[^&#]*/gi, "$1****");
}

// One helper per kind of value. Each returns the fallback for an unset or empty variable and throws a ConfigError
// that says what is allowed for anything else.

/** A C2SP note signer key for Ed25519 (src/vlog/note.ts). */
function signerKey(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const parsed = parseSignerKey(raw);
  if (typeof parsed === "string") throw new ConfigError(name, raw, parsed, { secret: true });
  return raw.trim();
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(name, raw, "must be true or false (or 1 or 0)");
}

/** A comma list of origins such as `https://app.example.com`, or `*`. */
function origins(env: Env, name: string): string[] {
  const raw = env[name] ?? "";
  const list = raw
    .split(",")
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of list) {
    if (origin === "*" || (URL.canParse(origin) && new URL(origin).origin === origin)) continue;
    throw new ConfigError(
      name,
      raw,
      `"${origin}" is not an origin: give a comma list of scheme://host[:port] without a path, like https://app.example.com, or *`,
    );
  }
  return list;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\s*-?\d+\s*$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(name, raw, `must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function oneOf(env: Env, name: string, fallback: string, allowed: readonly string[]): string {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (allowed.includes(raw)) return raw;
  throw new ConfigError(name, raw, `must be one of ${allowed.join(", ")}`);
}

/** An IP address or a host name to listen on. Whether it is this machine's is found out by listening. */
function host(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const label = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
  if (isIP(raw) !== 0 || new RegExp(`^${label}(\\.${label})*$`, "i").test(raw)) return raw;
  throw new ConfigError(
    name,
    raw,
    "must be an IP address (0.0.0.0 for every IPv4 interface, :: for every one) or a host name",
  );
}

/** A directory, resolved against the working directory; it may not exist yet, but must not be a file. */
function directory(env: Env, name: string, fallback: string): string {
  const raw = env[name] || fallback;
  const resolved = path.resolve(raw);
  const stat = statSync(resolved, { throwIfNoEntry: false });
  if (stat && !stat.isDirectory()) {
    throw new ConfigError(
      name,
      raw,
      `${resolved} exists and is not a directory: name a directory (it is created if missing)`,
    );
  }
  return resolved;
}

/**
 * A PostgreSQL URL. Several hosts (`postgres://h1:5432,h2:5432/db`, which postgres.js accepts) are checked by the
 * first. Whether the database answers is found out by connecting (src/store/database.ts).
 */
function postgresUrl(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const hosts = raw.slice(raw.indexOf("://") + 3).split(/[?/]/)[0] ?? "";
  const firstHost = hosts.slice(0, hosts.indexOf("@") + 1) + (hosts.slice(hosts.indexOf("@") + 1).split(",")[0] ?? "");
  const url = URL.canParse(raw.replace(hosts, firstHost)) ? new URL(raw.replace(hosts, firstHost)) : undefined;
  if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:")) {
    throw new ConfigError(
      name,
      maskSecrets(raw),
      "must be a PostgreSQL URL like postgres://user:password@host:5432/database (percent-encode special characters in the password)",
    );
  }
  return raw;
}

/** A certificate and its private key, PEM files that must both be given, readable and belong together. */
function tlsFiles(env: Env, certName: string, keyName: string): { cert: string; key: string } | undefined {
  const cert = env[certName] || undefined;
  const key = env[keyName] || undefined;
  if (!cert && !key) return undefined;
  if (!cert || !key) {
    const [missing, given] = cert ? [keyName, certName] : [certName, keyName];
    throw new ConfigError(
      missing,
      undefined,
      `must be set with ${given}: give both PEM files for TLS, or neither for cleartext`,
    );
  }
  const read = (name: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ConfigError(
        name,
        file,
        `cannot be read (${(error as NodeJS.ErrnoException).code}): give a readable PEM file`,
      );
    }
  };
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(read(certName, cert));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(certName, cert, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(read(keyName, key));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(keyName, key, "holds no unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)");
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(keyName, key, `is not the private key of ${certName}'s certificate: give the pair's key`);
  }
  return { cert, key };
}

/**
 * A secret token, checked for about `minBits` bits of entropy. The estimate is the token's length times the Shannon
 * entropy of its own characters' frequencies: a random base64 token of 32 bytes scores about 210 bits, a word with
 * digits (at_reviewtoken123) about 60, a repeated character 0. It catches short and patterned tokens; it cannot tell
 * a random token from a long passphrase of words, so make tokens with a random generator.
 */
function secretToken(env: Env, name: string, minBits: number): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const make = "make one with: openssl rand -base64 32";
  if (!/^[\x21-\x7e]+$/.test(raw)) {
    throw new ConfigError(name, raw, `must be printable ASCII without spaces (it travels in an HTTP header); ${make}`, {
      secret: true,
    });
  }
  const bits = entropyBits(raw);
  if (bits < minBits) {
    throw new ConfigError(
      name,
      raw,
      `has about ${Math.floor(bits)} bits of entropy, at least ${minBits} are needed; ${make} (or node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))")`,
      { secret: true },
    );
  }
  return raw;
}

/** Length times the Shannon entropy of the text's character frequencies, in bits. */
export function entropyBits(text: string): number {
  const counts = new Map<string, number>();
  for (const c of text) counts.set(c, (counts.get(c) ?? 0) + 1);
  let perCharacter = 0;
  for (const n of counts.values()) perCharacter -= (n / text.length) * Math.log2(n / text.length);
  return perCharacter * text.length;
}

/**
 * Whether to export traces, from the OpenTelemetry SDK's standard variables: OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER
 * (`otlp` or `none`; unset means otlp once an endpoint is given), OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT and
 * OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (only `http/protobuf` is built in), and OTEL_TRACES_SAMPLER(_ARG), which
 * the SDK reads. The exporter reads the rest itself.
 */
function tracing(env: Env): boolean {
  const disabled = bool(env, "OTEL_SDK_DISABLED", false);
  for (const name of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
    const value = env[name];
    if (value && !(URL.canParse(value) && /^https?:$/.test(new URL(value).protocol))) {
      throw new ConfigError(
        name,
        value,
        "must be the http:// or https:// URL of an OTLP collector, e.g. http://collector:4318",
      );
    }
  }
  for (const name of ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]) {
    oneOf(env, name, "http/protobuf", ["http/protobuf"]);
  }
  const exporter = oneOf(env, "OTEL_TRACES_EXPORTER", "", ["otlp", "none"]);
  // The SDK reads the sampler itself, but would only log a bad one and then sample every trace.
  const sampler = oneOf(env, "OTEL_TRACES_SAMPLER", "parentbased_always_on", [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
  ]);
  const ratio = env.OTEL_TRACES_SAMPLER_ARG;
  if (sampler.endsWith("traceidratio") && ratio && !(/^\s*[\d.]+\s*$/.test(ratio) && Number(ratio) <= 1)) {
    throw new ConfigError("OTEL_TRACES_SAMPLER_ARG", ratio, "must be the share of traces to sample, from 0 to 1");
  }
  if (disabled || exporter === "none") return false;
  return exporter === "otlp" || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
