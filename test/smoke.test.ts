import { expect, test } from "vitest";
import { AuditService } from "../gen/audit/v1/audit_service_pb.js";
import { clientFor, protocols } from "./support/clients.js";
import { appFixture } from "./support/fixture.js";

const given = appFixture({ tenants: ["acme"] });

test.each(protocols)("creates and lists an event over %s", async (protocol) => {
  const client = clientFor(AuditService, given.app, protocol, given.acme.readerWriter);
  const { event } = await client.create({ event: { action: `smoke.${protocol}`, actor: { id: "u1" } } });
  expect(event?.tenant).toBe("acme");
  const { events } = await client.list({ actions: [`smoke.${protocol}`] });
  expect(events.map((e) => e.id)).toEqual([event?.id]);
});
