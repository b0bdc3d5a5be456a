import { randomUUID } from "node:crypto";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import type { TestApp } from "./app.js";
import { clientFor, type TenantTokens } from "./clients.js";

/** One accepted request to one legacy API, sent with whatever extra headers a test adds (a traceparent, say). */
export interface LegacyCall {
  /** The API's name, as metrics label its calls (`protocol`) and traces mark its spans (`audit.protocol`). */
  api: string;
  send(headers?: Record<string, string>): Promise<Response>;
}

/**
 * A request every legacy API accepts from `tokens`' tenant, for tests that follow calls through every route. Its
 * Universal Controller user (Basic) and template are created here, once per tenant.
 */
export async function legacyCalls(app: TestApp, tokens: TenantTokens): Promise<LegacyCall[]> {
  const admin = clientFor(AdminService, app, "connect", tokens.admin);
  const password = "legacy calls password";
  await admin.createUser({ username: "legacy.ops", password, roles: [Role.READER, Role.WRITER] });
  await admin.createEventTemplate({ template: { name: "legacy.deploy" } });
  const basic = `Basic ${Buffer.from(`${tokens.tenant}/legacy.ops:${password}`).toString("base64")}`;
  const post = (path: string, type: string, body: string, headers: Record<string, string>) =>
    fetch(`${app.url}${path}`, { method: "POST", headers: { "content-type": type, ...headers }, body });
  return [
    {
      api: "planoauth",
      send: (headers = {}) =>
        post(
          "/api/v1/audit_events_fmp/create",
          "application/json",
          JSON.stringify({
            token: tokens.writer,
            unique_id: `plano-${randomUUID()}`,
            script_name: "backup.sh",
            host_name: "db-1",
            file_name: "/srv/backup.sh",
            start_time: "2024-01-01 00:00:00",
          }),
          headers,
        ),
    },
    {
      api: "axonize",
      send: (headers = {}) =>
        post(
          "/odata/Audits",
          "application/json",
          JSON.stringify({ entityName: "Boiler 3", entityId: "dev-3", action: "Put", category: "Devices" }),
          { authorization: tokens.writer, ...headers },
        ),
    },
    {
      api: "audit-resource",
      send: (headers = {}) =>
        fetch(`${app.url}/audit`, {
          headers: { accept: "application/xml", authorization: `Bearer ${tokens.reader}`, ...headers },
        }),
    },
    {
      api: "universal-controller",
      send: (headers = {}) =>
        post(
          "/uc/resources/universalevent/publish",
          "application/xml",
          "<universalEvent><name>legacy.deploy</name></universalEvent>",
          { authorization: basic, ...headers },
        ),
    },
    {
      api: "universal-controller",
      send: (headers = {}) =>
        post("/uc/resources/audit/list", "application/xml", "<audit-filter/>", {
          accept: "application/json",
          authorization: basic,
          ...headers,
        }),
    },
  ];
}
