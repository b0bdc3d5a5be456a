import { Code } from "@connectrpc/connect";
import { describe, expect, test } from "vitest";
import { type ApiProtocol, apiProtocols, auditApi, type EventJson, failure, micros } from "../support/audit-api.js";
import { provisionTenant } from "../support/clients.js";
import { expectAll } from "../support/expect-all.js";
import { appFixture } from "../support/fixture.js";

const given = appFixture({ tenants: ["acme"] });

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Everything in acme with this source, children included, oldest first. */
async function storedWithSource(protocol: ApiProtocol, source: string): Promise<EventJson[]> {
  const api = auditApi(given.app, protocol, given.acme.reader);
  try {
    const { events } = await api.list({ source, includeChildren: true, order: "ORDER_OLDEST_FIRST", pageSize: 1000 });
    return events;
  } finally {
    api.close();
  }
}

describe.each(apiProtocols)("over %s", (protocol) => {
  const api = () => auditApi(given.app, protocol, given.acme.writer);
  const source = (name: string) => `${protocol}/${name}`;

  test("Create stores every field and returns the stored event with its output fields", async () => {
    const event: EventJson = {
      id: `full.${protocol}:1`,
      occurredAt: "2024-03-01T10:00:00.123456Z",
      completedAt: "2024-03-01T10:00:01.654321Z",
      source: source("full"),
      action: "invoice.pay",
      category: "Invoices",
      actor: { id: "u-1", type: "user", name: "Ada Lovelace", email: "ada@example.com", roles: ["admin", "billing"] },
      target: { id: "inv-9", type: "invoice", name: "Invoice 9" },
      outcome: { status: "OUTCOME_STATUS_FAILURE", code: "402", message: "card declined" },
      request: {
        ip: "203.0.113.9",
        method: "POST",
        url: "/invoices/9/pay?x=1",
        userAgent: "curl/8.5",
        durationMs: 12.5,
        correlationId: "corr-1",
        sessionId: "sess-1",
      },
      attributes: { amount: 12.5, currency: "EUR", tags: ["a", "b"], nested: { ok: false, none: null, n: 0 } },
      parentId: "root-1",
    };
    const client = api();
    const before = Date.now();
    const { event: stored } = await client.create({ event });
    const after = Date.now();
    client.close();

    expect(stored).toEqual({ ...event, tenant: "acme", sequence: expect.any(String), receivedAt: expect.any(String) });
    expect(Number(stored.sequence)).toBeGreaterThan(0);
    const received = Date.parse(stored.receivedAt ?? "");
    expect(received).toBeGreaterThanOrEqual(before - 1);
    expect(received).toBeLessThanOrEqual(after + 1);
    expect(stored.expiresAt).toBeUndefined();
    // What List returns is what Create acknowledged: the response is the committed row.
    expect(await storedWithSource(protocol, source("full"))).toEqual([stored]);
  });

  test("Create assigns a UUIDv7 id and defaults occurred_at to received_at", async () => {
    const client = api();
    const { event } = await client.create({ event: { action: "user.login", source: source("defaults") } });
    client.close();
    expect(event.id).toMatch(UUID_V7);
    expect(event.occurredAt).toBe(event.receivedAt);
    expect(event.completedAt).toBeUndefined();
    // The id's 48-bit prefix is the receive time in milliseconds.
    const idMillis = Number.parseInt((event.id ?? "").replaceAll("-", "").slice(0, 12), 16);
    expect(idMillis).toBe(Math.floor(Date.parse(event.receivedAt ?? "")));
    expect(await storedWithSource(protocol, source("defaults"))).toEqual([event]);
  });

  test("timestamps keep microseconds and drop only sub-microsecond digits", async () => {
    const client = api();
    const { events } = await client.batchCreate({
      events: [
        { action: "t", source: source("micros"), occurredAt: "2024-02-29T23:59:59.000001Z" },
        {
          action: "t",
          source: source("micros"),
          occurredAt: "2024-02-29T12:34:56.123456789Z",
          completedAt: "2024-02-29T12:34:56.999999999Z",
        },
        { action: "t", source: source("micros"), occurredAt: "1970-01-01T00:00:00Z" },
        { action: "t", source: source("micros"), occurredAt: "2024-02-29T12:00:00+02:00" },
      ],
    });
    client.close();
    expect(events.map((e) => [e.occurredAt, e.completedAt])).toEqual([
      ["2024-02-29T23:59:59.000001Z", undefined],
      ["2024-02-29T12:34:56.123456Z", "2024-02-29T12:34:56.999999Z"],
      ["1970-01-01T00:00:00Z", undefined],
      ["2024-02-29T10:00:00Z", undefined],
    ]);
    const stored = await storedWithSource(protocol, source("micros"));
    expect(stored.map((e) => e.occurredAt)).toEqual([
      "1970-01-01T00:00:00Z",
      "2024-02-29T10:00:00Z",
      "2024-02-29T12:34:56.123456Z",
      "2024-02-29T23:59:59.000001Z",
    ]);
  });

  test("BatchCreate stores events in request order with consecutive sequences and one received_at", async () => {
    const client = api();
    const { events } = await client.batchCreate({
      events: [
        { id: `batch-a.${protocol}`, action: "project.create", source: source("batch") },
        { action: "project.update", source: source("batch"), occurredAt: "2024-01-01T00:00:00Z" },
        {
          id: `batch-c.${protocol}`,
          action: "project.delete",
          source: source("batch"),
          parentId: `batch-a.${protocol}`,
        },
      ],
    });
    client.close();
    expect(events.map((e) => e.action)).toEqual(["project.create", "project.update", "project.delete"]);
    expect(events[0]?.id).toBe(`batch-a.${protocol}`);
    expect(events[1]?.id).toMatch(UUID_V7);
    const first = Number(events[0]?.sequence);
    expect(events.map((e) => Number(e.sequence))).toEqual([first, first + 1, first + 2]);
    expect(new Set(events.map((e) => e.receivedAt)).size).toBe(1);
    expectAll(events, (e) => e.tenant === "acme", "events");
    const stored = await storedWithSource(protocol, source("batch"));
    expect(stored.sort((a, b) => Number(a.sequence) - Number(b.sequence))).toEqual(events);
  });

  test("a batch with one invalid event writes nothing", async () => {
    const client = api();
    const before = await client.create({ event: { action: "marker", source: source("atomic-marker") } });
    const error = await failure(
      client.batchCreate({
        events: [
          { action: "ok.1", source: source("atomic-invalid") },
          { action: "ok.2", source: source("atomic-invalid") },
          { action: "", source: source("atomic-invalid") },
          { action: "ok.4", source: source("atomic-invalid") },
        ],
      }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.violations.map((v) => v.field)).toEqual(["events[2].action"]);
    expect(await storedWithSource(protocol, source("atomic-invalid"))).toEqual([]);
    // No sequence was used up either: the next event follows the one before the refused batch.
    const after = await client.create({ event: { action: "marker", source: source("atomic-marker") } });
    client.close();
    expect(Number(after.event.sequence)).toBe(Number(before.event.sequence) + 1);
  });

  test("a batch with one conflicting id writes nothing and names the id and its index", async () => {
    const client = api();
    const taken = `atomic-taken.${protocol}`;
    const before = await client.create({ event: { id: taken, action: "first", source: source("atomic-marker2") } });
    const error = await failure(
      client.batchCreate({
        events: [
          { id: `atomic-new-1.${protocol}`, action: "ok", source: source("atomic-conflict") },
          { action: "ok", source: source("atomic-conflict") },
          { id: taken, action: "second", source: source("atomic-marker2") },
          { id: `atomic-new-2.${protocol}`, action: "ok", source: source("atomic-conflict") },
        ],
      }),
    );
    expect(error.code).toBe(Code.AlreadyExists);
    expect(error.reason).toBe("DUPLICATE_ID");
    expect(error.domain).toBe("audit.v1");
    expect(error.metadata).toMatchObject({ id: taken, field: "events[2].id" });
    expect(await storedWithSource(protocol, source("atomic-conflict"))).toEqual([]);
    expect(await storedWithSource(protocol, source("atomic-marker2"))).toEqual([before.event]);
    const after = await client.create({ event: { action: "marker", source: source("atomic-conflict-after") } });
    client.close();
    expect(Number(after.event.sequence)).toBe(Number(before.event.sequence) + 1);
  });

  test("replaying an id with the same content returns the stored event and stores nothing", async () => {
    const client = api();
    const id = `replay.${protocol}`;
    const event: EventJson = {
      id,
      action: "doc.share",
      source: source("replay"),
      actor: { id: "u-7", roles: ["a", "b"] },
      attributes: { a: 1, b: { x: "1", y: [1, 2, { p: true, q: null }] }, c: "z" },
    };
    const first = await client.create({ event });
    // The same content with every object's keys in another order, and the fields in another order too.
    const reordered: EventJson = {
      attributes: { c: "z", b: { y: [1, 2, { q: null, p: true }], x: "1" }, a: 1 },
      actor: { roles: ["a", "b"], id: "u-7" },
      source: source("replay"),
      action: "doc.share",
      id,
    };
    const second = await client.create({ event: reordered });
    expect(second.event).toEqual(first.event);
    // In a batch, a replayed id resolves to the stored event while new events are stored around it.
    const batch = await client.batchCreate({
      events: [
        { action: "doc.view", source: source("replay") },
        reordered,
        { id: `replay-new.${protocol}`, action: "doc.view", source: source("replay") },
      ],
    });
    client.close();
    expect(batch.events[1]).toEqual(first.event);
    const firstSeq = Number(first.event.sequence);
    expect(Number(batch.events[0]?.sequence)).toBeGreaterThan(firstSeq);
    // The replayed event takes no sequence: the two new ones are consecutive.
    expect(Number(batch.events[2]?.sequence)).toBe(Number(batch.events[0]?.sequence) + 1);
    const stored = await storedWithSource(protocol, source("replay"));
    expect(stored.map((e) => e.id).sort()).toEqual([id, batch.events[0]?.id, `replay-new.${protocol}`].sort());
  });

  test("the same id with different content is ALREADY_EXISTS with reason DUPLICATE_ID naming the id", async () => {
    const client = api();
    const id = `conflict.${protocol}`;
    const original = await client.create({
      event: { id, action: "doc.share", source: source("conflict"), attributes: { to: "bob" } },
    });
    const variants: EventJson[] = [
      { id, action: "doc.share", source: source("conflict"), attributes: { to: "eve" } },
      { id, action: "doc.share", source: source("conflict") },
      {
        id,
        action: "doc.share",
        source: source("conflict"),
        attributes: { to: "bob" },
        occurredAt: "2024-01-01T00:00:00Z",
      },
      { id, action: "doc.unshare", source: source("conflict"), attributes: { to: "bob" } },
    ];
    for (const event of variants) {
      const error = await failure(client.create({ event }));
      expect(error.code).toBe(Code.AlreadyExists);
      expect(error.reason).toBe("DUPLICATE_ID");
      expect(error.domain).toBe("audit.v1");
      expect(error.metadata).toMatchObject({ id, field: "event.id" });
      expect(error.message).toContain(id);
    }
    client.close();
    expect(await storedWithSource(protocol, source("conflict"))).toEqual([original.event]);
  });
});

test("ids are unique per tenant: another tenant may use the same id", async () => {
  const globex = await provisionTenant(given.app, "globex");
  const event: EventJson = { id: "shared-id", action: "x", source: "isolation" };
  const a = auditApi(given.app, "connect", given.acme.writer);
  const b = auditApi(given.app, "grpc-js", globex.writer);
  const inAcme = await a.create({ event });
  const inGlobex = await b.create({ event: { ...event, action: "y" } });
  a.close();
  b.close();
  expect(inAcme.event.tenant).toBe("acme");
  // Its own sequence too: globex's first event, whatever acme's log holds.
  expect(inGlobex.event).toMatchObject({
    tenant: "globex",
    id: "shared-id",
    action: "y",
    sequence: String(globex.firstSequence),
  });
});

test("100 concurrent creates into one tenant get the next 100 sequences in commit order", async () => {
  const tenant = await provisionTenant(given.app, "concurrent");
  const clients = apiProtocols.map((protocol) => auditApi(given.app, protocol, tenant.readerWriter));
  const created = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      clients[i % clients.length]?.create({ event: { id: `c-${i}`, action: "burst", attributes: { i } } }),
    ),
  );
  const sequences = created.map((r) => Number(r?.event.sequence)).sort((a, b) => a - b);
  expect(sequences).toEqual(Array.from({ length: 100 }, (_, i) => Number(tenant.firstSequence) + i));

  for (const client of clients) client.close();
  const reader = auditApi(given.app, "connect", tenant.reader);
  const { events } = await reader.list({ order: "ORDER_OLDEST_FIRST", pageSize: 1000 });
  reader.close();
  expect(events.map((e) => Number(e.sequence))).toEqual(sequences);
  // received_at is the commit time, so it never goes backwards as sequences (commit order) go up.
  const received = events.map((e) => micros(e.receivedAt ?? ""));
  expect(received).toEqual([...received].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
});
