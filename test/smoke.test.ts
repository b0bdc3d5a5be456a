import { afterAll, beforeAll, expect, test } from "vitest";
import { AuditService } from "../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "./support/app.js";
import { clientFor, protocols, provisionTenant, type TenantTokens } from "./support/clients.js";

let app: TestApp;
let acme: TenantTokens;
beforeAll(async () => {
  app = await startTestApp();
  acme = await provisionTenant(app, "acme");
});
afterAll(() => app?.close());

test.each(protocols)("creates and lists an event over %s", async (protocol) => {
  const client = clientFor(AuditService, app, protocol, acme.readerWriter);
  const { event } = await client.create({ event: { action: `smoke.${protocol}`, actor: { id: "u1" } } });
  expect(event?.tenant).toBe("acme");
  const { events } = await client.list({ actions: [`smoke.${protocol}`] });
  expect(events.map((e) => e.id)).toEqual([event?.id]);
});
