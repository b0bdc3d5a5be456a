import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, AttributeType } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { type GrpcClients, grpcClients } from "../support/grpc-client.js";
import {
  connectTail,
  deliversWithin,
  grpcJsTail,
  read,
  TailEnded,
  type TailedEvent,
  type TailOpener,
} from "./tail-clients.js";

// Two instances of the service on one database: Tail on A must deliver what B stores.
let database: TestDatabase;
let a: TestApp;
let b: TestApp;
let grpcA: GrpcClients;
let auditA: ReturnType<typeof createClient<typeof AuditService>>;
let auditB: ReturnType<typeof createClient<typeof AuditService>>;
let tails: Record<"grpc-js" | "connect" | "grpc-web" | "connect-grpc", TailOpener>;

beforeAll(async () => {
  database = await createTestDatabase();
  [a, b] = await Promise.all([startTestApp({ database }), startTestApp({ database })]);
  grpcA = grpcClients(a.url);
  auditA = createClient(AuditService, createConnectTransport({ baseUrl: a.url, httpVersion: "2" }));
  auditB = createClient(AuditService, createConnectTransport({ baseUrl: b.url, httpVersion: "1.1" }));
  tails = {
    "grpc-js": grpcJsTail(grpcA),
    connect: connectTail(createConnectTransport({ baseUrl: a.url, httpVersion: "1.1" })),
    "grpc-web": connectTail(createGrpcWebTransport({ baseUrl: a.url, httpVersion: "1.1" })),
    "connect-grpc": connectTail(createGrpcTransport({ baseUrl: a.url })),
  };
});
afterAll(async () => {
  grpcA?.close();
  await Promise.all([a?.close(), b?.close()]);
  await database?.drop();
});

/** How a stream ended: fails the test if it did not end with an RPC error. */
async function endOf(reading: () => Promise<unknown>) {
  try {
    await reading();
  } catch (error) {
    if (error instanceof TailEnded) return error.end;
    throw error;
  }
  throw new Error("the stream did not end");
}

const sequences = (events: { sequence: bigint }[]) => events.map((e) => e.sequence);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));

describe("Tail", () => {
  test("delivers what Create, BatchCreate and Publish store on another instance, over every protocol", async () => {
    const tenant = "multi";
    await createClient(
      AdminService,
      createConnectTransport({ baseUrl: b.url, httpVersion: "1.1" }),
    ).createEventTemplate({
      tenant,
      template: { name: "deploy", attributes: [{ name: "version", type: AttributeType.STRING, required: true }] },
    });
    const streams = Object.values(tails).map((open) => open({ tenant, afterSequence: 0n }));
    const stored = [
      (await auditB.create({ tenant, event: { action: "user.login" } })).event,
      ...(await auditB.batchCreate({ tenant, events: [{ action: "a.1" }, { action: "a.2" }, { action: "a.3" }] }))
        .events,
      (await auditB.publish({ tenant, eventName: "deploy", attributes: [{ name: "version", value: "1.2" }] })).event,
      (await auditB.create({ tenant, event: { action: "user.logout" } })).event,
    ];
    const expected = stored.map((e) => ({ id: e?.id, tenant, sequence: e?.sequence, action: e?.action }));
    for (const stream of streams) expect(await read(stream, expected.length)).toEqual(expected);
    for (const stream of streams) stream.close();
  });

  test("replays after after_sequence, then follows, with List's filter semantics", async () => {
    const tenant = "filtered";
    const first = await auditB.batchCreate({
      tenant,
      events: [{ action: "job.start" }, { action: "other" }, { action: "job.end", outcome: { status: 2 } }],
    });
    const parent = first.events[0]?.id ?? "";
    const filter = { actions: ["job.*"], includeChildren: true };
    const stream = tails["grpc-js"]({ tenant, filter, afterSequence: 1n });
    await auditA.batchCreate({
      tenant,
      events: [
        { action: "job.child", parentId: parent },
        { action: "jobless" },
        { action: "job.done", source: "cron" },
      ],
    });
    const { events: listed } = await auditA.list({ tenant, ...filter, order: 2 });
    const tailed = await read(stream, listed.length - 1);
    // List has sequence 1 too; the stream replays only after it.
    expect(tailed.map((e) => e.id)).toEqual(listed.slice(1).map((e) => e.id));
    expect(await deliversWithin(stream, 300)).toBeUndefined();

    // Children are left out by default, as in List.
    const noChildren = tails.connect({ tenant, filter: { actions: ["job.*"] }, afterSequence: 0n });
    expect((await read(noChildren, 3)).map((e) => e.action)).toEqual(["job.start", "job.end", "job.done"]);
    expect(await deliversWithin(noChildren, 300)).toBeUndefined();
  });

  test("without after_sequence, starts with events committed from now on", async () => {
    const tenant = "from-now";
    await auditB.batchCreate({ tenant, events: [{ action: "old" }, { action: "old" }] });
    const stream = tails["grpc-web"]({ tenant });
    // When the stream starts is the server's moment: write until something arrives.
    let reading = true;
    const writing = (async () => {
      for (let i = 0; i < 100 && reading; i++) {
        await auditB.create({ tenant, event: { action: "new" } });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const [first, second] = await read(stream, 2);
    reading = false;
    stream.close();
    expect(first?.action).toBe("new");
    expect(first?.sequence).toBeGreaterThan(2n);
    expect(second?.sequence).toBe((first?.sequence ?? 0n) + 1n);
    await writing;
  });

  test("never shows one tenant's events to another", async () => {
    const streamA = tails["connect-grpc"]({ tenant: "iso-a", afterSequence: 0n, filter: { includeChildren: true } });
    const streamB = tails["grpc-js"]({ tenant: "iso-b", afterSequence: 0n, filter: { includeChildren: true } });
    for (let i = 0; i < 5; i++) {
      await auditB.batchCreate({ tenant: "iso-b", events: [{ action: "b" }, { action: "b" }, { action: "b" }] });
      await auditA.create({ tenant: "iso-a", event: { action: "a" } });
    }
    const gotA = await read(streamA, 5);
    const gotB = await read(streamB, 15);
    expect(gotA.every((e) => e.tenant === "iso-a" && e.action === "a")).toBe(true);
    expect(sequences(gotA)).toEqual(range(1, 5));
    expect(gotB.every((e) => e.tenant === "iso-b" && e.action === "b")).toBe(true);
    expect(sequences(gotB)).toEqual(range(1, 15));
    expect(await deliversWithin(streamA, 300)).toBeUndefined();
    streamB.close();
  });

  test("resumes after disconnects with no gap and no duplicate across 5,000 events", async () => {
    const tenant = "resume";
    const total = 5000;
    // Two writers on both instances, one batching and one creating singly, interleave their sequences.
    const batches = (async () => {
      for (let i = 0; i < 48; i++) {
        await auditB.batchCreate({ tenant, events: Array.from({ length: 100 }, () => ({ action: "bulk" })) });
      }
    })();
    const singles = (async () => {
      for (let i = 0; i < 200; i++) await auditA.create({ tenant, event: { action: "single" } });
    })();
    const received: TailedEvent[] = [];
    const openers = Object.values(tails);
    for (let round = 0; received.length < total; round++) {
      const open = openers[round % openers.length] as TailOpener;
      const stream = open({ tenant, afterSequence: received.at(-1)?.sequence ?? 0n });
      // Disconnect after a varying number of events, mid-flight.
      received.push(...(await read(stream, Math.min(total - received.length, 300 + ((round * 397) % 600)))));
      stream.close();
    }
    await Promise.all([batches, singles]);
    expect(sequences(received)).toEqual(range(1, total));
    expect(received.filter((e) => e.action === "single")).toHaveLength(200);
  }, 120_000);

  test("refuses a bad request with the field at fault", async () => {
    const stream = tails.connect({ tenant: "Bad Tenant", afterSequence: -1n, filter: { actions: ["a*b"] } });
    const ended = await stream.next().then(
      () => undefined,
      (e) => e,
    );
    expect(ended).toBeInstanceOf(TailEnded);
    expect(ended.end.code).toBe(Code.InvalidArgument);
    const error = await (async () => {
      for await (const _ of auditA.tail({ tenant: "ok", afterSequence: -1n, filter: { actions: ["a*b"] } })) break;
    })().then(() => undefined, ConnectError.from);
    const fields = error?.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field);
    expect(fields).toEqual(["filter.actions[0]", "after_sequence"]);
  });
});

describe("a slow Tail stream", () => {
  let c: TestApp;
  let grpcC: GrpcClients;
  beforeAll(async () => {
    c = await startTestApp({ database, env: { TAIL_BUFFER_EVENTS: "1000" } });
    grpcC = grpcClients(c.url);
  });
  afterAll(async () => {
    grpcC?.close();
    await c?.close();
  });

  test("is ended with RESOURCE_EXHAUSTED and where to resume, without holding up writers or other streams", async () => {
    const tenant = "slow";
    const total = 4000;
    const open = grpcJsTail(grpcC);
    const fast = open({ tenant, afterSequence: 0n });
    const slow = open({ tenant, afterSequence: 0n });
    await auditB.create({ tenant, event: { action: "tick" } });
    // The slow stream takes one event and then stops reading: grpc-js then stops reading from the connection, and
    // the server's writes block once the HTTP/2 flow-control window is full.
    const got: TailedEvent[] = [await slow.next()];
    const fastRead = read(fast, total, 60_000);
    for (let written = 1; written < total; written += 40) {
      const events = Array.from({ length: Math.min(40, total - written) }, () => ({ action: "tick" }));
      await auditB.batchCreate({ tenant, events });
    }
    expect(sequences(await fastRead)).toEqual(range(1, total));
    fast.close();

    const end = await endOf(async () => {
      for (;;) got.push(...(await read(slow, 1, 10_000)));
    });
    expect(end?.code).toBe(Code.ResourceExhausted);
    expect(end?.reason).toBe("TAIL_TOO_SLOW");
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(total);
    expect(sequences(got)).toEqual(range(1, got.length));
    expect(end?.metadata.lastSequence).toBe(String(got.length));
    expect(end?.message).toBe(`the stream fell more than 1000 events behind; resume with after_sequence=${got.length}`);

    const resumed = open({ tenant, afterSequence: BigInt(end?.metadata.lastSequence ?? "0") });
    expect(sequences(await read(resumed, total - got.length))).toEqual(range(got.length + 1, total));
    resumed.close();
  }, 120_000);

  test("is ended with UNAVAILABLE and where to resume when its server shuts down", async () => {
    const d = await startTestApp({ database });
    const grpcD = grpcClients(d.url);
    try {
      const stream = grpcJsTail(grpcD)({ tenant: "shutdown", afterSequence: 0n });
      await auditB.batchCreate({ tenant: "shutdown", events: [{ action: "x" }, { action: "y" }] });
      expect(sequences(await read(stream, 2))).toEqual(range(1, 2));
      const closing = d.close();
      const end = await endOf(() => stream.next());
      await closing;
      expect(end?.code).toBe(Code.Unavailable);
      expect(end?.reason).toBe("TAIL_INTERRUPTED");
      expect(end?.metadata.lastSequence).toBe("2");
    } finally {
      grpcD.close();
      await d.close();
    }
  });
});
