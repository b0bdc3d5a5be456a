import { Code, ConnectError } from "@connectrpc/connect";
import { expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { reasonOf } from "../../src/errors.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";

// Small groups, so 40 calls make several flushes with the odd events spread among them.
const given = appFixture({ env: { GROUP_COMMIT_MAX_BATCH: "8" } });

test("40 concurrent Creates over gRPC: each caller gets its own event, conflict or replay; sequences stay gapless", async () => {
  const { readerWriter, firstSequence } = await provisionTenant(given.app, "concurrent");
  const first = Number(firstSequence);
  const client = clientFor(AuditService, given.app, "grpc", readerWriter);
  await client.create({ tenant: "concurrent", event: { id: "taken", action: "original" } });

  const calls = Array.from({ length: 40 }, (_, i) => {
    if (i === 7) return client.create({ tenant: "concurrent", event: { id: "taken", action: "changed" } });
    if (i === 20 || i === 21) return client.create({ tenant: "concurrent", event: { id: "twin", action: "same" } });
    return client.create({ tenant: "concurrent", event: { action: `call.${i}` } });
  });
  const results = await Promise.allSettled(calls);

  const refused = results[7];
  expect(refused?.status).toBe("rejected");
  const error = ConnectError.from((refused as PromiseRejectedResult).reason);
  expect([error.code, reasonOf(error)]).toEqual([Code.AlreadyExists, "DUPLICATE_ID"]);

  const stored = results.flatMap((r, i) =>
    r.status === "fulfilled" && r.value.event ? [{ call: i, event: r.value.event }] : [],
  );
  expect(stored).toHaveLength(39);
  const twins = stored.filter(({ call }) => call === 20 || call === 21).map(({ event }) => event);
  expect(twins[0]?.sequence).toBe(twins[1]?.sequence);
  expect(twins[0]?.receivedAt).toEqual(twins[1]?.receivedAt);

  // The first event plus 38 new ones (37 plain, one twin): 39 sequences from the tenant's first, no gap, no repeat.
  const sequences = new Set(stored.map(({ event }) => Number(event.sequence)));
  expect([...sequences].sort((a, b) => a - b)).toEqual(Array.from({ length: 38 }, (_, k) => first + 1 + k));
  const { events } = await client.list({ tenant: "concurrent", pageSize: 100, includeChildren: true });
  expect(events.map((e) => Number(e.sequence)).sort((a, b) => a - b)).toEqual(
    Array.from({ length: 39 }, (_, k) => first + k),
  );
});
