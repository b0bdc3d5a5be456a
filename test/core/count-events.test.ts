import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { beforeAll, describe, expect, test } from "vitest";
import { AuditService, type EventFilterSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { clientFor, protocols } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { expectError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";

const clock = new ManualClock();
const HOUR = 3600n;
const at = (time: string) => timestampFromDate(new Date(`2024-01-01T${time}Z`));
type Filter = Omit<MessageInitShape<typeof EventFilterSchema>, "$typeName">;

/** 40 events over 2024-01-01 00:00–10:00 in three actions, four outcomes and two sources; every fifth a child. */
const seed = Array.from({ length: 40 }, (_, i) => ({
  id: `e${i}`,
  occurredAt: at(`${String(Math.floor(i / 4)).padStart(2, "0")}:${String((i * 7) % 60).padStart(2, "0")}:00`),
  action: ["project.create", "project.delete", "user.login"][i % 3] as string,
  source: i % 2 === 0 ? "web" : "api",
  actor: { id: `u${i % 5}` },
  outcome: { status: [OutcomeStatus.SUCCESS, OutcomeStatus.FAILURE, OutcomeStatus.UNSPECIFIED][i % 3] },
  parentId: i % 5 === 4 ? "e0" : "",
}));

const given = appFixture({ clock, tenants: ["acme", "globex"] });
beforeAll(async () => {
  await clientFor(AuditService, given.app, "connect", given.acme.writer).batchCreate({ events: seed });
  // The same events in another tenant: acme's counts must not see them.
  await clientFor(AuditService, given.app, "connect", given.app.adminToken).batchCreate({
    tenant: "globex",
    events: seed,
  });
});

/** What List returns for the filter, counted per bucket and outcome in JavaScript: the answer CountEvents must give. */
async function countedFromList(filter: Filter, widthSeconds: bigint) {
  const list = clientFor(AuditService, given.app, "connect", given.acme.reader);
  const counts = new Map<number, Map<number, number>>();
  for (let pageToken = "", first = true; first || pageToken !== ""; first = false) {
    const page = await list.list({ ...filter, pageSize: 7, pageToken });
    for (const e of page.events) {
      const seconds = Number(e.occurredAt?.seconds);
      const bucket = seconds - (seconds % Number(widthSeconds));
      const byOutcome = counts.get(bucket) ?? new Map<number, number>();
      byOutcome.set(e.outcome?.status ?? 0, (byOutcome.get(e.outcome?.status ?? 0) ?? 0) + 1);
      counts.set(bucket, byOutcome);
    }
    pageToken = page.nextPageToken;
  }
  return counts;
}

const filters: [string, Filter][] = [
  ["time range only", { startTime: at("00:00:00"), endTime: at("10:00:00") }],
  ["with children", { startTime: at("00:00:00"), endTime: at("10:00:00"), includeChildren: true }],
  ["action prefix", { startTime: at("00:00:00"), endTime: at("10:00:00"), actions: ["project.*"] }],
  ["outcome", { startTime: at("00:00:00"), endTime: at("10:00:00"), outcome: OutcomeStatus.FAILURE }],
  ["source and actor", { startTime: at("01:30:00"), endTime: at("08:15:00"), source: "web", actorId: "u2" }],
  ["children of e0", { startTime: at("00:00:00"), endTime: at("10:00:00"), parentId: "e0" }],
];

describe.each(protocols)("CountEvents over %s", (protocol) => {
  test.each(filters)("counts what List returns: %s", async (_label, filter) => {
    const client = clientFor(AuditService, given.app, protocol, given.acme.reader);
    for (const width of [HOUR, 15n * 60n, 86400n]) {
      const reply = await client.countEvents({ filter, bucketWidth: { seconds: width } });
      const expected = await countedFromList(filter, width);
      const start = Number(filter.startTime?.seconds);
      const end = Number(filter.endTime?.seconds);
      const first = start - (start % Number(width));
      expect(reply.buckets.length).toBe(Math.ceil((end - first) / Number(width)));
      let total = 0n;
      reply.buckets.forEach((b, i) => {
        const bucketStart = Number(b.startTime?.seconds);
        expect(bucketStart).toBe(first + i * Number(width));
        const want = expected.get(bucketStart) ?? new Map();
        expect(new Map(b.outcomes.map((o) => [o.status, Number(o.count)]))).toEqual(want);
        expect(Number(b.total)).toBe([...want.values()].reduce((a, n) => a + n, 0));
        expect(b.outcomes.map((o) => o.status)).toEqual([...b.outcomes.map((o) => o.status)].sort((a, c) => a - c));
        total += b.total;
      });
      expect(reply.total).toBe(total);
    }
  });
});

test("a range that starts inside a bucket counts only from start_time; empty buckets are listed", async () => {
  const client = clientFor(AuditService, given.app, "grpc-web", given.acme.reader);
  const reply = await client.countEvents({
    filter: { startTime: at("09:30:00"), endTime: at("12:00:00"), includeChildren: true },
    bucketWidth: { seconds: HOUR },
  });
  const inRange = seed.filter((e) => {
    const t = timestampDate(e.occurredAt).getTime();
    return t >= Date.parse("2024-01-01T09:30:00Z") && t < Date.parse("2024-01-01T12:00:00Z");
  });
  expect(reply.buckets.map((b) => timestampDate(b.startTime ?? at("00:00:00")).toISOString())).toEqual([
    "2024-01-01T09:00:00.000Z",
    "2024-01-01T10:00:00.000Z",
    "2024-01-01T11:00:00.000Z",
  ]);
  expect(reply.buckets.map((b) => Number(b.total))).toEqual([inRange.length, 0, 0]);
  expect(reply.total).toBe(BigInt(inRange.length));
});

test("without end_time the range ends now, by the service's clock", async () => {
  const client = clientFor(AuditService, given.app, "connect", given.acme.reader);
  const now = clock.nowMicros() / 1_000_000n;
  const reply = await client.countEvents({
    filter: { startTime: { seconds: now - 2n * HOUR } },
    bucketWidth: { seconds: HOUR },
  });
  const first = now - 2n * HOUR - ((now - 2n * HOUR) % HOUR);
  expect(reply.buckets.length).toBe(Number((now - first + HOUR - 1n) / HOUR));
  expect(reply.total).toBe(0n);
});

test("over REST: GET /v1/tenants/{tenant}/events:count with the filter in the query", async () => {
  const query = new URLSearchParams({
    "filter.startTime": "2024-01-01T00:00:00Z",
    "filter.endTime": "2024-01-01T10:00:00Z",
    "filter.actions": "project.*",
    bucketWidth: "3600s",
  });
  const response = await fetch(`${given.app.url}/v1/tenants/acme/events:count?${query}`, {
    headers: { authorization: `Bearer ${given.acme.reader}` },
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { total: string; buckets: { total?: string }[] };
  const expected = await countedFromList(
    { startTime: at("00:00:00"), endTime: at("10:00:00"), actions: ["project.*"] },
    HOUR,
  );
  const sum = [...expected.values()].flatMap((m) => [...m.values()]).reduce((a, n) => a + n, 0);
  expect(body.total).toBe(String(sum));
  expect(body.buckets).toHaveLength(10);
});

describe("refusals", () => {
  const client = () => clientFor(AuditService, given.app, "connect", given.acme.reader);
  const day = { startTime: at("00:00:00"), endTime: at("10:00:00") };

  test("start_time is required", async () => {
    await expectError(client().countEvents({ bucketWidth: { seconds: HOUR } }), {
      code: Code.InvalidArgument,
      fields: ["filter.start_time"],
    });
  });
  test("bucket_width is required, whole seconds, at most 366 days", async () => {
    await expectError(client().countEvents({ filter: day }), { code: Code.InvalidArgument, fields: ["bucket_width"] });
    for (const w of [{ seconds: 0n }, { seconds: 1n, nanos: 1 }, { seconds: -5n }, { seconds: 366n * 86400n + 1n }]) {
      await expectError(client().countEvents({ filter: day, bucketWidth: w }), {
        code: Code.InvalidArgument,
        fields: ["bucket_width"],
      });
    }
  });
  test("more than 1000 buckets is refused, saying how many", async () => {
    const error = await expectError(client().countEvents({ filter: day, bucketWidth: { seconds: 30n } }), {
      code: Code.InvalidArgument,
      fields: ["bucket_width"],
    });
    expect(error.rawMessage).toContain("1200 buckets");
  });
  test("the filter is checked as List's is", async () => {
    await expectError(client().countEvents({ filter: { ...day, actions: ["a*b"] }, bucketWidth: { seconds: HOUR } }), {
      code: Code.InvalidArgument,
      fields: ["filter.actions[0]"],
    });
    await expectError(
      client().countEvents({
        filter: { startTime: at("05:00:00"), endTime: at("04:00:00") },
        bucketWidth: { seconds: HOUR },
      }),
      { code: Code.InvalidArgument, fields: ["filter.end_time"] },
    );
  });
  test("a writer-only key is refused, and so is another tenant", async () => {
    const writer = clientFor(AuditService, given.app, "connect", given.acme.writer);
    await expectError(writer.countEvents({ filter: day, bucketWidth: { seconds: HOUR } }), {
      code: Code.PermissionDenied,
    });
    await expectError(client().countEvents({ tenant: "globex", filter: day, bucketWidth: { seconds: HOUR } }), {
      code: Code.PermissionDenied,
    });
  });
  test("hostile text in filters is data, not SQL", async () => {
    const reply = await client().countEvents({
      filter: { ...day, actorId: "u1' or '1'='1", actions: ["%*", "_*"] },
      bucketWidth: { seconds: HOUR },
    });
    expect(reply.total).toBe(0n);
  });
});

describe("GetEvent", () => {
  test("returns a child event List leaves out by default, over gRPC-web and REST", async () => {
    const reply = await clientFor(AuditService, given.app, "grpc-web", given.acme.reader).getEvent({ id: "e4" });
    expect(reply.event?.parentId).toBe("e0");
    expect(reply.event?.tenant).toBe("acme");
    const rest = await fetch(`${given.app.url}/v1/tenants/acme/events/e4`, {
      headers: { authorization: `Bearer ${given.acme.reader}` },
    });
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as { event: { id: string } }).event.id).toBe("e4");
  });
  test("an unknown id is NOT_FOUND, a malformed one INVALID_ARGUMENT, another tenant's PERMISSION_DENIED", async () => {
    const client = clientFor(AuditService, given.app, "connect", given.acme.reader);
    await expectError(client.getEvent({ id: "nope" }), { code: Code.NotFound, reason: "EVENT_NOT_FOUND" });
    await expectError(client.getEvent({ id: "a b" }), { code: Code.InvalidArgument, fields: ["id"] });
    await expectError(client.getEvent({ tenant: "globex", id: "e4" }), { code: Code.PermissionDenied });
  });
});
