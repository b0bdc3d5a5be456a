/** Size limits on what a caller may store. README and docs/limits.md list the same numbers. */
export const limits = {
  idLength: 128,
  shortText: 256,
  longText: 1024,
  url: 8192,
  outcomeMessage: 8192,
  roles: 64,
  attributesBytes: 64 * 1024,
  attributesDepth: 16,
  batchEvents: 1000,
  pageSizeDefault: 50,
  pageSizeMax: 1000,
  listActions: 50,
  /** CountEvents: buckets in one answer, and the widest bucket (366 days, in seconds). */
  countBuckets: 1000,
  bucketWidthMaxSeconds: 366n * 24n * 3600n,
  templateAttributes: 100,
  templatesPerTenant: 1000,
  /** 100 years: far enough for any retention rule, near enough that expires_at stays a valid timestamp. */
  ttlMinutesMax: 100 * 365 * 24 * 60,
  /** Longer names and values are cut (with "…") where a message quotes them, so an error fits in a header. */
  quotedChars: 256,
  /** Clients' clocks drift; an event more than a day in the future is a bug, not drift. */
  futureSkewMicros: 24n * 3600n * 1_000_000n,
  /** 1970-01-01: nothing audited happened before the epoch. */
  minMicros: 0n,
  /** 9999-12-31T23:59:59.999999Z, the end of the protobuf Timestamp range. */
  maxMicros: 253402300799999999n,
} as const;

/** A caller's value as a message quotes it: in double quotes, cut to `limits.quotedChars` characters. */
export function quoted(value: string): string {
  return `"${value.length > limits.quotedChars ? `${value.slice(0, limits.quotedChars)}…` : value}"`;
}

export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** Event template and attribute names: a path segment in REST URLs, so no "/" and no leading ".". */
export const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/**
 * The reserved tenant of the service's own global records (self-audit). Outside TENANT_PATTERN, so no tenant created
 * through CreateTenant can ever have it; superadmins read it, and only the service writes to it.
 */
export const SYSTEM_TENANT = "_system";
/** An all-digit tenant key is a numeric tenant id (legacy APIs address tenants by number), never a slug. */
export const NUMERIC_TENANT_ID = /^\d{1,18}$/;
