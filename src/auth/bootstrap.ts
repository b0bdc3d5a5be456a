import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { Role } from "../../gen/audit/v1/admin_service_pb.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { IdentityStore } from "../store/identity-store.js";
import { microsToIso } from "../store/time.js";
import { generateToken, hashToken } from "./secrets.js";

const BOOTSTRAP_ID = "bootstrap-admin";

/**
 * Makes sure someone can administer a new installation. AUDIT_ADMIN_TOKEN, when set, is the superadmin token
 * (stored hashed; a new value rotates it). Otherwise, the first start with no global credential generates one and
 * writes it to DATA_DIR/admin-token (mode 0600), logging only the path.
 */
export async function bootstrapAdmin(options: {
  store: IdentityStore;
  clock: Clock;
  logger: Logger;
  adminToken: string | undefined;
  dataDir: string;
}): Promise<void> {
  const { store, clock, logger } = options;
  const now = microsToIso(clock.nowMicros());
  if (options.adminToken) {
    await store.upsertBootstrap(BOOTSTRAP_ID, hashToken(options.adminToken), [Role.SUPERADMIN], now);
    return;
  }
  if (await store.hasGlobalCredential()) return;
  const token = generateToken("at_");
  const row = await store.insertCredential({
    id: BOOTSTRAP_ID,
    tenant: null,
    kind: 1,
    name: "bootstrap",
    roles: [Role.SUPERADMIN],
    secretHash: hashToken(token),
    tokenPrefix: token.slice(0, 10),
    createdAt: now,
  });
  // Another instance won the race and wrote its own token file.
  if (!row) return;
  await mkdir(options.dataDir, { recursive: true });
  const file = path.join(options.dataDir, "admin-token");
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  logger.warn({ file }, "generated a superadmin token; read it from this file and keep it safe");
}
