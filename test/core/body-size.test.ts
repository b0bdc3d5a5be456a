import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type AuditApi, apiProtocols, auditApi, failure } from "../support/audit-api.js";
import { appFixture } from "../support/fixture.js";

const given = appFixture({ tenants: ["acme"] });

const MiB = 1024 * 1024;

describe.each(apiProtocols)("over %s (MAX_BODY_BYTES left at its 4 MiB default)", (protocol) => {
  let api: AuditApi;
  beforeAll(() => {
    api = auditApi(given.app, protocol, given.acme.readerWriter);
  });
  afterAll(() => api.close());

  test("a body over 4 MiB is RESOURCE_EXHAUSTED, stores nothing, and the same client carries on", async () => {
    const error = await failure(
      api.create({ event: { action: "too.big", attributes: { blob: "x".repeat(4.1 * MiB) } } }),
    );
    expect(error.code, error.message).toBe(Code.ResourceExhausted);
    expect(error.message).toContain("4194304");
    // The next call on the same client (and so the same connection pool) is served normally, and quickly.
    const started = Date.now();
    const { event } = await api.create({ event: { action: "after.big" } });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(event.action).toBe("after.big");
    const { events } = await api.list({ actions: ["too.big"] });
    expect(events).toEqual([]);
  });

  test("a body just under 4 MiB is read in full and gets to validation", async () => {
    const error = await failure(
      api.create({ event: { action: "almost.too.big", attributes: { blob: "x".repeat(3.9 * MiB) } } }),
    );
    expect(error.code, error.message).toBe(Code.InvalidArgument);
    expect(error.violations.map((v) => v.field)).toEqual(["event.attributes"]);
  });
});
