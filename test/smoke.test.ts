import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AuditService } from "../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "./support/app.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

test("creates and lists an event over Connect", async () => {
  const client = createClient(AuditService, createConnectTransport({ baseUrl: app.url, httpVersion: "1.1" }));
  const { event } = await client.create({ tenant: "acme", event: { action: "project.create", actor: { id: "u1" } } });
  expect(event?.sequence).toBe(1n);
  const { events } = await client.list({ tenant: "acme" });
  expect(events.map((e) => e.id)).toEqual([event?.id]);
});
