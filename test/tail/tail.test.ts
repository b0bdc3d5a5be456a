import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, AttributeType } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { expectAll } from "../support/expect-all.js";
import {
  endOf,
  nextIsMarker,
  read,
  type TailedEvent,
  type TailOpener,
  type TailProtocol,
  tailClients,
} from "./tail-clients.js";

// Two instances of the service on one database: Tail on A must deliver what B stores. They share the superadmin
// token, which each start would otherwise rotate.
const env = { AUDIT_ADMIN_TOKEN: `at_test_${randomBytes(24).toString("base64url")}` };
let database: TestDatabase;
let a: TestApp;
let b: TestApp;
const closers: (() => void)[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  a = await startTestApp({ database, env });
  b = await startTestApp({ database, env });
});
afterAll(async () => {
  for (const close of closers) close();
  await Promise.all([a?.close(), b?.close()]);
  await database?.drop();
});

/**
 * A tenant as the tests use it: Tail openers on A with a reader key, writers on A and B with a writer key, and
 * an AdminService client on B.
 */
async function tenantOf(tenant: string, tailOn: TestApp = a, writeOn: TestApp = a) {
  const tokens = await provisionTenant(writeOn, tenant);
  const tails = tailClients(tailOn, tokens.reader);
  closers.push(tails.close);
  return {
    tokens,
    tails,
    writeA: clientFor(AuditService, writeOn, "connect-binary", tokens.writer),
    writeB: clientFor(AuditService, b, "connect", tokens.writer),
    readA: clientFor(AuditService, a, "connect", tokens.reader),
    adminB: clientFor(AdminService, b, "connect", tokens.admin),
  };
}

const sequences = (events: { sequence: bigint }[]) => events.map((e) => e.sequence);
/** `count` sequences from `first` (a tenant's first own event follows the records of its provisioning). */
const range = (first: bigint, count: number) => Array.from({ length: count }, (_, i) => first + BigInt(i));
const protocolsOf = (tails: Record<TailProtocol, TailOpener>): TailOpener[] =>
  (["grpc-js", "connect", "connect-binary", "grpc-web", "grpc"] as const).map((p) => tails[p]);

describe("Tail", () => {
  test("delivers what Create, BatchCreate and Publish store on another instance, over every protocol", async () => {
    const { tails, writeB, adminB } = await tenantOf("multi");
    await adminB.createEventTemplate({
      template: { name: "deploy", attributes: [{ name: "version", type: AttributeType.STRING, required: true }] },
    });
    const streams = protocolsOf(tails).map((open) => open({ afterSequence: 0n }));
    const stored = [
      (await writeB.create({ event: { action: "user.login" } })).event,
      ...(await writeB.batchCreate({ events: [{ action: "a.1" }, { action: "a.2" }, { action: "a.3" }] })).events,
      (await writeB.publish({ eventName: "deploy", attributes: [{ name: "version", value: "1.2" }] })).event,
      (await writeB.create({ event: { action: "user.logout" } })).event,
    ];
    const expected = stored.map((e) => ({ id: e?.id, tenant: "multi", sequence: e?.sequence, action: e?.action }));
    for (const stream of streams) expect(await read(stream, expected.length)).toEqual(expected);
    for (const stream of streams) stream.close();
  });

  test("replays after after_sequence, then follows, with List's filter semantics", async () => {
    const { tails, writeA, writeB, readA } = await tenantOf("filtered");
    const first = await writeB.batchCreate({
      events: [{ action: "job.start" }, { action: "other" }, { action: "job.end", outcome: { status: 2 } }],
    });
    const parent = first.events[0]?.id ?? "";
    const filter = { actions: ["job.*"], includeChildren: true };
    const stream = tails["grpc-js"]({ filter, afterSequence: first.events[0]?.sequence ?? 0n });
    await writeA.batchCreate({
      events: [
        { action: "job.child", parentId: parent },
        { action: "jobless" },
        { action: "job.done", source: "cron" },
      ],
    });
    const { events: listed } = await readA.list({ ...filter, order: 2 });
    const tailed = await read(stream, listed.length - 1);
    // List has the first event too; the stream replays only after it.
    expect(tailed.map((e) => e.id)).toEqual(listed.slice(1).map((e) => e.id));
    // The marker is a child, so the stream without children below must not see it either.
    await nextIsMarker(
      stream,
      async () => (await writeA.create({ event: { action: "job.marker", parentId: parent } })).event?.id,
    );

    // Children are left out by default, as in List.
    const noChildren = tails.connect({ filter: { actions: ["job.*"] }, afterSequence: 0n });
    expect((await read(noChildren, 3)).map((e) => e.action)).toEqual(["job.start", "job.end", "job.done"]);
    await nextIsMarker(
      noChildren,
      async () => (await writeA.create({ event: { action: "job.marker.top" } })).event?.id,
    );
  });

  test("without after_sequence, starts with events committed from now on", async () => {
    const { tokens, tails, writeB } = await tenantOf("from-now");
    await writeB.batchCreate({ events: [{ action: "old" }, { action: "old" }] });
    const stream = tails["grpc-web"]({});
    // When the stream starts is the server's moment: write until something arrives.
    let reading = true;
    const writing = (async () => {
      for (let i = 0; i < 100 && reading; i++) {
        await writeB.create({ event: { action: "new" } });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const [first, second] = await read(stream, 2);
    reading = false;
    stream.close();
    expect(first?.action).toBe("new");
    expect(first?.sequence).toBeGreaterThan(tokens.firstSequence + 1n);
    expect(second?.sequence).toBe((first?.sequence ?? 0n) + 1n);
    await writing;
  });

  test("never shows one tenant's events to another", async () => {
    const isoA = await tenantOf("iso-a");
    const isoB = await tenantOf("iso-b");
    const streamA = isoA.tails.grpc({ afterSequence: 0n, filter: { includeChildren: true } });
    const streamB = isoB.tails["grpc-js"]({ afterSequence: 0n, filter: { includeChildren: true } });
    for (let i = 0; i < 5; i++) {
      await isoB.writeB.batchCreate({ events: [{ action: "b" }, { action: "b" }, { action: "b" }] });
      await isoA.writeA.create({ event: { action: "a" } });
    }
    const gotA = await read(streamA, 5);
    const gotB = await read(streamB, 15);
    expectAll(gotA, (e) => e.tenant === "iso-a" && e.action === "a", "gotA");
    expect(sequences(gotA)).toEqual(range(isoA.tokens.firstSequence, 5));
    expectAll(gotB, (e) => e.tenant === "iso-b" && e.action === "b", "gotB");
    expect(sequences(gotB)).toEqual(range(isoB.tokens.firstSequence, 15));
    await nextIsMarker(streamA, async () => (await isoA.writeA.create({ event: { action: "a" } })).event?.id);
    streamB.close();
    // Another tenant's stream is not the caller's to open.
    const elsewhere = isoA.tails.connect({ tenant: "iso-b", afterSequence: 0n });
    const end = await endOf(() => elsewhere.next());
    expect([end?.code, end?.reason]).toEqual([Code.PermissionDenied, "TENANT_MISMATCH"]);
  });

  test("streams over REST as NDJSON, the filter and after_sequence in the query", async () => {
    const { tokens, writeB } = await tenantOf("rest-tail");
    await writeB.batchCreate({ events: [{ action: "job.a" }, { action: "other" }, { action: "job.b" }] });
    const abort = new AbortController();
    const first = tokens.firstSequence;
    const query = `afterSequence=${first}&filter.actions=job.*`;
    const response = await fetch(`${a.url}/v1/tenants/rest-tail/events:tail?${query}`, {
      headers: { authorization: `Bearer ${tokens.reader}` },
      signal: abort.signal,
    });
    expect(response.headers.get("content-type")).toContain("application/x-ndjson");
    await writeB.create({ event: { action: "job.c" } });
    const lines: { result: { event: { sequence: string; action: string } } }[] = [];
    const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    while (lines.length < 2 && reader) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const complete = buffered.split("\n");
      buffered = complete.pop() ?? "";
      lines.push(...complete.filter(Boolean).map((line) => JSON.parse(line)));
    }
    abort.abort();
    expect(lines.map((l) => [l.result.event.sequence, l.result.event.action])).toEqual([
      [String(first + 2n), "job.b"],
      [String(first + 3n), "job.c"],
    ]);
  });

  test("needs the reader role", async () => {
    const { tokens } = await tenantOf("roles");
    const asWriter = tailClients(a, tokens.writer);
    closers.push(asWriter.close);
    const end = await endOf(() => asWriter.grpc({ afterSequence: 0n }).next());
    expect([end?.code, end?.reason]).toEqual([Code.PermissionDenied, "INSUFFICIENT_ROLE"]);
  });

  test("resumes after disconnects with no gap and no duplicate across 5,000 events", async () => {
    const { tokens, tails, writeA, writeB } = await tenantOf("resume");
    const total = 5000;
    // Two writers on both instances, one batching and one creating singly, interleave their sequences.
    const batches = (async () => {
      for (let i = 0; i < 48; i++) {
        await writeB.batchCreate({ events: Array.from({ length: 100 }, () => ({ action: "bulk" })) });
      }
    })();
    const singles = (async () => {
      for (let i = 0; i < 200; i++) await writeA.create({ event: { action: "single" } });
    })();
    const received: TailedEvent[] = [];
    const openers = protocolsOf(tails);
    for (let round = 0; received.length < total; round++) {
      const open = openers[round % openers.length] as TailOpener;
      const stream = open({ afterSequence: received.at(-1)?.sequence ?? 0n });
      // Disconnect after a varying number of events, mid-flight.
      received.push(...(await read(stream, Math.min(total - received.length, 300 + ((round * 397) % 600)))));
      stream.close();
    }
    await Promise.all([batches, singles]);
    expect(sequences(received)).toEqual(range(tokens.firstSequence, total));
    expect(received.filter((e) => e.action === "single")).toHaveLength(200);
  }, 120_000);

  test("refuses a bad request with the field at fault", async () => {
    const { readA } = await tenantOf("bad-requests");
    const error = await expectError(
      (async () => {
        for await (const _ of readA.tail({ afterSequence: -1n, filter: { actions: ["a*b"] } })) break;
      })(),
      { code: Code.InvalidArgument },
    );
    const fields = error.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field);
    expect(fields).toEqual(["filter.actions[0]", "after_sequence"]);
    expect(error).toBeInstanceOf(ConnectError);
  });
});

describe("a slow Tail stream", () => {
  // A third instance on the file's database, which its beforeAll creates.
  let c: TestApp;
  beforeAll(async () => {
    c = await startTestApp({ database, env: { ...env, TAIL_BUFFER_EVENTS: "1000" } });
  });
  afterAll(() => c?.close());

  test("is ended with RESOURCE_EXHAUSTED and where to resume, without holding up writers or other streams", async () => {
    const { tokens, tails, writeB } = await tenantOf("slow", c);
    const first = tokens.firstSequence;
    const total = 4000;
    const open = tails["grpc-js"];
    const fast = open({ afterSequence: 0n });
    const slow = open({ afterSequence: 0n });
    await writeB.create({ event: { action: "tick" } });
    // The slow stream takes one event and then stops reading: grpc-js then stops reading from the connection, and
    // the server's writes block once the HTTP/2 flow-control window is full.
    const got: TailedEvent[] = [await slow.next()];
    const fastRead = read(fast, total, 60_000);
    for (let written = 1; written < total; written += 40) {
      await writeB.batchCreate({
        events: Array.from({ length: Math.min(40, total - written) }, () => ({ action: "tick" })),
      });
    }
    expect(sequences(await fastRead)).toEqual(range(first, total));
    fast.close();

    const end = await endOf(async () => {
      for (;;) got.push(...(await read(slow, 1, 10_000)));
    });
    expect(end?.code).toBe(Code.ResourceExhausted);
    expect(end?.reason).toBe("TAIL_TOO_SLOW");
    expect(got.length).toBeLessThan(total);
    expect(sequences(got)).toEqual(range(first, got.length));
    const last = first + BigInt(got.length) - 1n;
    expect(end?.metadata.lastSequence).toBe(String(last));
    expect(end?.message).toBe(`the stream fell more than 1000 events behind; resume with after_sequence=${last}`);

    const resumed = open({ afterSequence: BigInt(end?.metadata.lastSequence ?? "0") });
    expect(sequences(await read(resumed, total - got.length))).toEqual(range(last + 1n, total - got.length));
    resumed.close();
  }, 120_000);

  test("is ended with UNAVAILABLE and where to resume when reading past events fails", async () => {
    const d = await startTestApp({ env });
    try {
      const { tokens, tails, writeA } = await tenantOf("catch-up", d, d);
      await writeA.batchCreate({ events: [{ action: "x" }, { action: "y" }] });
      // Positive control: the catch-up reads both events while the table is whole.
      const before = tails["grpc-js"]({ afterSequence: tokens.firstSequence - 1n });
      expect(sequences(await read(before, 2))).toEqual(range(tokens.firstSequence, 2));
      before.close();
      // Break the events table under the running service: the stream's starting point (the tenant's last sequence)
      // still reads, the events after it do not.
      const sql = postgres(d.databaseUrl, { max: 1, onnotice: () => {} });
      await sql`alter table events rename column source to source_renamed`;
      await sql.end();
      const stream = tails["grpc-js"]({ afterSequence: tokens.firstSequence });
      const end = await endOf(() => stream.next());
      expect([end?.code, end?.reason, end?.metadata.lastSequence]).toEqual([
        Code.Unavailable,
        "TAIL_INTERRUPTED",
        String(tokens.firstSequence),
      ]);
    } finally {
      await d.close();
    }
  });

  test("is ended with UNAVAILABLE and where to resume when its server shuts down", async () => {
    const d = await startTestApp({ database, env });
    try {
      const { tokens, tails, writeB } = await tenantOf("shutdown", d);
      const stream = tails["grpc-js"]({ afterSequence: 0n });
      await writeB.batchCreate({ events: [{ action: "x" }, { action: "y" }] });
      expect(sequences(await read(stream, 2))).toEqual(range(tokens.firstSequence, 2));
      const closing = d.close();
      const end = await endOf(() => stream.next());
      await closing;
      expect(end?.code).toBe(Code.Unavailable);
      expect(end?.reason).toBe("TAIL_INTERRUPTED");
      expect(end?.metadata.lastSequence).toBe(String(tokens.firstSequence + 1n));
    } finally {
      await d.close();
    }
  });
});
