import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { Role } from "../../gen/audit/v1/admin_service_pb.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { CredentialRow, IdentityStore } from "../store/identity-store.js";
import { microsToIso, pgTimestampMicros } from "../store/time.js";
import { generateToken, hashToken, secretsEqual } from "./secrets.js";

/** The one bootstrap credential: AUDIT_ADMIN_TOKEN's, or the generated one in the token file. */
export const BOOTSTRAP_ID = "bootstrap-admin";

/** A change this start made to the bootstrap credential: a token installed (set, rotated, generated) or retired. */
export interface BootstrapChange {
  change: "installed" | "retired";
  credential: CredentialRow;
}

/**
 * Makes sure someone can administer the installation, with at most one bootstrap superadmin credential per database.
 * - AUDIT_ADMIN_TOKEN set: that token is the credential (stored hashed; a new value rotates it and replaces a
 *   generated one; a value revoked through the API stays refused until the variable changes).
 * - AUDIT_ADMIN_TOKEN unset: a credential an earlier AUDIT_ADMIN_TOKEN installed is revoked (removing the variable
 *   retires its token). Then, with no live global credential left, a token is generated and written to `tokenFile`
 *   (mode 0600). Either way the log names the file that holds this database's token, never the token.
 */
export async function bootstrapAdmin(options: {
  store: IdentityStore;
  clock: Clock;
  logger: Logger;
  adminToken: string | undefined;
  /** Where this database's generated token is written (adminTokenFile). */
  tokenFile: string;
}): Promise<BootstrapChange[]> {
  const { store, clock, logger, tokenFile } = options;
  const at = clock.nowMicros();
  const now = microsToIso(at);
  const changes: BootstrapChange[] = [];
  if (options.adminToken) {
    const hash = hashToken(options.adminToken);
    const before = await store.getCredential(BOOTSTRAP_ID);
    const row = await store.upsertBootstrap(BOOTSTRAP_ID, "AUDIT_ADMIN_TOKEN", hash, [Role.SUPERADMIN], now);
    if (row?.revokedAt) {
      logger.warn(
        { credential: BOOTSTRAP_ID },
        "AUDIT_ADMIN_TOKEN was revoked through the API and is refused: give the variable a new value to rotate it",
      );
    }
    // A new token is this start's doing unless a concurrent start stored it first (its create time is then that
    // start's); the same token keeps its create time.
    const changed = !before || !secretsEqual(before.secretHash, hash);
    if (row && changed && pgTimestampMicros(row.createdAt) === at)
      changes.push({ change: "installed", credential: row });
    return changes;
  }
  const retired = await store.retireBootstrap(BOOTSTRAP_ID, now);
  if (retired) {
    logger.warn({ credential: BOOTSTRAP_ID }, "AUDIT_ADMIN_TOKEN is no longer set: its token is revoked");
    changes.push({ change: "retired", credential: retired });
  }
  if (await store.hasGlobalCredential()) {
    const saved = await readFile(tokenFile, "utf8").catch(() => "");
    const live = await store.getCredential(BOOTSTRAP_ID);
    if (saved && live && !live.revokedAt && secretsEqual(hashToken(saved.trim()), live.secretHash)) {
      logger.info({ file: tokenFile }, "the superadmin token for this database is in this file");
    } else {
      logger.info(
        { file: tokenFile },
        "no token file holds this database's superadmin token; to get a new one, set AUDIT_ADMIN_TOKEN",
      );
    }
    return changes;
  }
  const token = generateToken("at_");
  const row = await store.replaceRevoked({
    id: BOOTSTRAP_ID,
    tenant: null,
    kind: 1,
    name: "generated",
    roles: [Role.SUPERADMIN],
    secretHash: hashToken(token),
    tokenPrefix: token.slice(0, 10),
    createdAt: now,
    revokedAt: null,
  });
  // Another instance won the race and wrote its own token file.
  if (!row) return changes;
  await mkdir(path.dirname(tokenFile), { recursive: true });
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  await chmod(tokenFile, 0o600); // writeFile's mode applies only to a new file
  logger.warn({ file: tokenFile }, "generated a superadmin token for this database; read it from this file");
  changes.push({ change: "installed", credential: row });
  return changes;
}

/**
 * The file for a database's generated token. The embedded database lives in DATA_DIR, so its file is plain
 * `admin-token`; a DATABASE_URL database's is named by the database's identity (cluster system identifier and name),
 * so switching between databases never overwrites another database's token.
 */
export function adminTokenFile(dataDir: string, store: IdentityStore, embedded: boolean): Promise<string> {
  return databaseFile(dataDir, store, embedded, "admin-token");
}

/** `base` in DATA_DIR for the embedded database, `base-<system identifier>-<database>` for a DATABASE_URL one. */
export async function databaseFile(
  dataDir: string,
  store: IdentityStore,
  embedded: boolean,
  base: string,
): Promise<string> {
  if (embedded) return path.join(dataDir, base);
  const { systemIdentifier, database } = await store.databaseIdentity();
  return path.join(dataDir, `${base}-${systemIdentifier}-${database.replace(/[^A-Za-z0-9_.-]/g, "_")}`);
}
