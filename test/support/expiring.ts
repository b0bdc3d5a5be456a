import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import type { TestApp } from "./app.js";
import { clientFor, type TenantTokens } from "./clients.js";
import type { ManualClock } from "./clock.js";

/**
 * A writer API key that expires in an hour and a writer's session (which expires after 72 hours unused), both
 * usable now; `expire()` moves the app's clock past both. The app must run on `clock` with CREDENTIAL_CACHE_MS=0.
 */
export async function expiringWriters(app: TestApp, tenant: string, tokens: TenantTokens, clock: ManualClock) {
  const admin = clientFor(AdminService, app, "connect", tokens.admin);
  const expireTime = timestampFromMs(Number(clock.nowMicros() / 1000n) + 3_600_000);
  const key = await admin.createApiKey({ name: "expiring writer", roles: [Role.WRITER], expireTime });
  const username = `expiring-${Date.now()}`;
  await admin.createUser({ username, password: "a writer's password", roles: [Role.WRITER] });
  const session = await clientFor(AdminService, app, "connect").login({
    tenant,
    username,
    password: "a writer's password",
  });
  return { key: key.token, session: session.token, expire: () => clock.advanceHours(73) };
}
