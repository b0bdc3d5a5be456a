import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ListRequestSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { type AuditApi, apiProtocols, auditApi, type EventJson, failure, type ListJson } from "../support/audit-api.js";
import { appFixture } from "../support/fixture.js";

const at = (time: string) => `2024-01-01T${time}:00Z`;
const SUCCESS = "OUTCOME_STATUS_SUCCESS";
const FAILURE = "OUTCOME_STATUS_FAILURE";
const alice = { id: "alice", type: "user", name: "Alice Smith" };
const bob = { id: "bob", type: "user", name: "Bob Jones" };
const carol = { id: "carol", type: "user", name: "Carol" };
const svc = { id: "svc", type: "service", name: "Alice Smith" };

/**
 * Stored in this order, so sequences follow it. Top-level events are a1..a10; c1..c3 are children. Three events share
 * 02:00 (a2, a3, c2) so ties are broken by sequence; a8 shares a1's target id with another type and alice's name.
 */
const seed: EventJson[] = [
  {
    id: "a1",
    occurredAt: at("01:00"),
    action: "project.create",
    category: "Projects",
    source: "web",
    actor: alice,
    target: { id: "p1", type: "project" },
    outcome: { status: SUCCESS },
  },
  {
    id: "a2",
    occurredAt: at("02:00"),
    action: "project.update",
    category: "Projects",
    source: "web",
    actor: bob,
    target: { id: "p1", type: "project" },
    outcome: { status: FAILURE },
  },
  {
    id: "a3",
    occurredAt: at("02:00"),
    action: "project.delete",
    category: "Projects",
    source: "api",
    actor: alice,
    target: { id: "p2", type: "project" },
    outcome: { status: SUCCESS },
  },
  {
    id: "a4",
    occurredAt: at("03:00"),
    action: "projects.archive",
    category: "Projects",
    source: "api",
    actor: carol,
    target: { id: "p2", type: "project" },
  },
  {
    id: "a5",
    occurredAt: at("04:00"),
    action: "LOGIN",
    category: "Users",
    source: "sso",
    actor: alice,
    target: { id: "alice", type: "user" },
    outcome: { status: SUCCESS },
  },
  {
    id: "a6",
    occurredAt: at("05:00"),
    action: "user_x.login",
    category: "Users",
    source: "sso",
    actor: bob,
    target: { id: "bob", type: "user" },
    outcome: { status: FAILURE },
  },
  {
    id: "a7",
    occurredAt: at("06:00"),
    action: "userAx.login",
    category: "Users",
    source: "sso",
    actor: carol,
    target: { id: "carol", type: "user" },
    outcome: { status: SUCCESS },
  },
  {
    id: "a8",
    occurredAt: at("07:00"),
    action: "100%.done",
    category: "Jobs",
    source: "batch",
    actor: svc,
    target: { id: "p1", type: "device" },
    outcome: { status: FAILURE },
  },
  {
    id: "a9",
    occurredAt: at("08:00"),
    action: "1000.done",
    category: "Jobs",
    source: "batch",
    actor: svc,
    target: { id: "j1", type: "job" },
    outcome: { status: SUCCESS },
  },
  {
    id: "c1",
    occurredAt: at("01:30"),
    action: "project.step",
    category: "Projects",
    source: "web",
    actor: alice,
    target: { id: "p1", type: "project" },
    outcome: { status: SUCCESS },
    parentId: "a1",
  },
  {
    id: "c2",
    occurredAt: at("02:00"),
    action: "project.step",
    category: "Projects",
    source: "web",
    actor: alice,
    target: { id: "p1", type: "project" },
    outcome: { status: FAILURE },
    parentId: "a1",
  },
  {
    id: "c3",
    occurredAt: at("03:30"),
    action: "project.step",
    category: "Projects",
    source: "web",
    actor: bob,
    target: { id: "p1", type: "project" },
    outcome: { status: SUCCESS },
    parentId: "a2",
  },
  {
    id: "a10",
    occurredAt: at("09:00"),
    action: "project.create",
    category: "Projects",
    source: "web",
    actor: bob,
    target: { id: "p3", type: "project" },
    outcome: { status: SUCCESS },
  },
];

const given = appFixture({ tenants: ["acme", "globex"] });
beforeAll(async () => {
  const writer = auditApi(given.app, "connect", given.acme.writer);
  await writer.batchCreate({ events: seed });
  writer.close();
  // The same events in another tenant: no listing of acme may show them.
  const other = auditApi(given.app, "connect", given.globex.writer);
  await other.batchCreate({ events: seed.map((e) => ({ ...e, attributes: { tenant: "globex" } })) });
  other.close();
});

/** Each filter shape with the ids it must return, newest first. */
const cases: [string, ListJson, string[]][] = [
  ["no filter: top-level events only", {}, ["a10", "a9", "a8", "a7", "a6", "a5", "a4", "a3", "a2", "a1"]],
  [
    "include_children",
    { includeChildren: true },
    ["a10", "a9", "a8", "a7", "a6", "a5", "c3", "a4", "c2", "a3", "a2", "c1", "a1"],
  ],
  [
    "start_time inclusive, end_time exclusive",
    { startTime: at("02:00"), endTime: at("05:00") },
    ["a5", "a4", "a3", "a2"],
  ],
  [
    "time window with children",
    { startTime: at("02:00"), endTime: at("05:00"), includeChildren: true },
    ["a5", "c3", "a4", "c2", "a3", "a2"],
  ],
  ["start_time only", { startTime: at("07:00") }, ["a10", "a9", "a8"]],
  ["end_time only", { endTime: at("02:00") }, ["a1"]],
  ["window with nothing in it", { startTime: at("10:00"), endTime: at("11:00") }, []],
  ["one exact action", { actions: ["project.create"] }, ["a10", "a1"]],
  ["exact action is case-sensitive", { actions: ["login"] }, []],
  ["prefix action", { actions: ["project.*"] }, ["a10", "a3", "a2", "a1"]],
  ["prefix without the dot", { actions: ["project*"] }, ["a10", "a4", "a3", "a2", "a1"]],
  ["exact and prefix together", { actions: ["LOGIN", "projects.*", "1000.done"] }, ["a9", "a5", "a4"]],
  ["prefix with a literal _", { actions: ["user_*"] }, ["a6"]],
  ["prefix with a literal %", { actions: ["100%*"] }, ["a8"]],
  ["actor_id", { actorId: "alice" }, ["a5", "a3", "a1"]],
  ["actor_id with children", { actorId: "alice", includeChildren: true }, ["a5", "c2", "a3", "c1", "a1"]],
  ["actor_name", { actorName: "Alice Smith" }, ["a9", "a8", "a5", "a3", "a1"]],
  ["target_id", { targetId: "p1" }, ["a8", "a2", "a1"]],
  ["target_id and target_type", { targetId: "p1", targetType: "project" }, ["a2", "a1"]],
  ["target_type", { targetType: "user" }, ["a7", "a6", "a5"]],
  ["category", { category: "Jobs" }, ["a9", "a8"]],
  ["source", { source: "sso" }, ["a7", "a6", "a5"]],
  ["outcome success", { outcome: SUCCESS }, ["a10", "a9", "a7", "a5", "a3", "a1"]],
  ["outcome failure", { outcome: FAILURE }, ["a8", "a6", "a2"]],
  [
    "outcome unspecified means any",
    { outcome: "OUTCOME_STATUS_UNSPECIFIED", category: "Projects" },
    ["a10", "a4", "a3", "a2", "a1"],
  ],
  ["parent_id lists the children without include_children", { parentId: "a1" }, ["c2", "c1"]],
  ["parent_id with include_children", { parentId: "a1", includeChildren: true }, ["c2", "c1"]],
  ["parent_id of another parent", { parentId: "a2" }, ["c3"]],
  ["parent_id without children", { parentId: "a9" }, []],
  ["several filters at once", { actorId: "bob", actions: ["project.*"], outcome: FAILURE }, ["a2"]],
  ["filters and a window", { source: "web", startTime: at("01:30") }, ["a10", "a2"]],
  [
    "filters and a window with children",
    { source: "web", startTime: at("01:30"), includeChildren: true },
    ["a10", "c3", "c2", "a2", "c1"],
  ],
  ["a value no event has", { actorId: "nobody" }, []],
];

describe.each(apiProtocols)("List over %s", (protocol) => {
  let api: AuditApi;
  beforeAll(() => {
    api = auditApi(given.app, protocol, given.acme.reader);
  });
  afterAll(() => api.close());
  const list = (request: ListJson) => api.list(request);

  test.each(cases)("%s", async (_name, request, expected) => {
    const [newest, oldest] = await Promise.all([list(request), list({ ...request, order: "ORDER_OLDEST_FIRST" })]);
    expect(newest.events.map((e) => e.id)).toEqual(expected);
    expect(newest.nextPageToken).toBe("");
    // Emptiness is pinned by the ids above; here no event may be another tenant's or carry attributes.
    expect(newest.events.filter((e) => e.tenant !== "acme" || e.attributes !== undefined)).toEqual([]);
    expect(oldest.events.map((e) => e.id)).toEqual([...expected].reverse());
  });

  test("newest first is the default order", async () => {
    const request: ListJson = { includeChildren: true };
    const implicit = await list(request);
    expect(implicit.events.length).toBe(seed.length);
    expect(await list({ ...request, order: "ORDER_NEWEST_FIRST" })).toEqual(implicit);
    expect(await list({ ...request, order: "ORDER_UNSPECIFIED" })).toEqual(implicit);
  });

  test("returns the events as stored", async () => {
    const { events } = await list({ includeChildren: true, order: "ORDER_OLDEST_FIRST" });
    const byId = new Map(events.map((e) => [e.id, e]));
    for (const [index, event] of seed.entries()) {
      expect(byId.get(event.id)).toEqual({
        ...event,
        tenant: "acme",
        sequence: String(given.acme.firstSequence + BigInt(index)),
        receivedAt: expect.any(String),
      });
    }
  });

  test.each([
    ["newest first", "ORDER_NEWEST_FIRST"],
    ["oldest first", "ORDER_OLDEST_FIRST"],
  ])("pages of 2 (%s) add up to the whole listing, ties included", async (_name, order) => {
    const request: ListJson = { includeChildren: true, order };
    const whole = (await list(request)).events.map((e) => e.id);
    const paged: (string | undefined)[] = [];
    let pageToken = "";
    for (let page = 0; page < 20; page++) {
      const res = await list({ ...request, pageSize: 2, pageToken });
      expect(res.events.length).toBe(Math.min(2, whole.length - paged.length));
      paged.push(...res.events.map((e) => e.id));
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    expect(pageToken).toBe("");
    expect(paged).toEqual(whole);
  });

  test("a page token may be used with another page size", async () => {
    const first = await list({ pageSize: 3 });
    const rest = await list({ pageSize: 100, pageToken: first.nextPageToken });
    expect([...first.events, ...rest.events].map((e) => e.id)).toEqual(cases[0]?.[2]);
  });

  test("a tampered page token is INVALID_ARGUMENT on page_token", async () => {
    const { nextPageToken } = await list({ pageSize: 2 });
    const [body = "", mac = ""] = nextPageToken.split(".");
    const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    const forged = Buffer.from(
      Buffer.from(body, "base64url")
        .toString("utf8")
        .replace(/,(\d+),/, (_m, seq) => `,${Number(seq) + 1},`),
    ).toString("base64url");
    for (const token of [
      `${flip(body, 5)}.${mac}`,
      `${body}.${flip(mac, 3)}`,
      `${forged}.${mac}`,
      body,
      `${nextPageToken}.x`,
      "not-a-token",
      "%%%",
    ]) {
      const error = await failure(list({ pageSize: 2, pageToken: token }));
      expect(error.code, token).toBe(Code.InvalidArgument);
      expect(error.reason).toBe("INVALID_PAGE_TOKEN");
      expect(error.violations.map((v) => v.field)).toEqual(["page_token"]);
    }
  });

  test("a page token reused with different filters is INVALID_ARGUMENT on page_token", async () => {
    const request: ListJson = { source: "web", includeChildren: true, pageSize: 2 };
    const { nextPageToken: pageToken } = await list(request);
    expect(pageToken).not.toBe("");
    const changes = [
      { source: "sso" },
      { order: "ORDER_OLDEST_FIRST" },
      { includeChildren: false },
      { actions: ["project.*"] },
      { startTime: at("00:00") },
      { endTime: at("23:00") },
      { outcome: SUCCESS },
      { actorId: "alice" },
      { actorName: "Bob Jones" },
      { targetId: "p1" },
      { targetType: "project" },
      { category: "Projects" },
      { parentId: "a1" },
      { activeOnly: true },
      { eventName: "project.create" },
      { includeServiceRecords: true },
    ] satisfies ListJson[];
    // Every filter of ListRequest, from its descriptor: all but the tenant and the paging fields bind the token.
    const filters = ListRequestSchema.fields
      .filter((f) => !["tenant", "page_size", "page_token"].includes(f.name))
      .map((f) => f.jsonName);
    expect(changes.flatMap((c) => Object.keys(c)).sort()).toEqual(filters.sort());
    for (const changed of changes) {
      const error = await failure(list({ ...request, ...changed, pageToken }));
      expect(error.code, JSON.stringify(changed)).toBe(Code.InvalidArgument);
      expect(error.violations.map((v) => [v.field, v.reason])).toEqual([["page_token", "INVALID_PAGE_TOKEN"]]);
    }
    // The same filters still work.
    expect((await list({ ...request, pageToken })).events.length).toBe(2);
  });
});

test("a page token from another tenant's listing is refused", async () => {
  const other = auditApi(given.app, "connect", given.globex.reader);
  const { nextPageToken } = await other.list({ pageSize: 1 });
  other.close();
  const api = auditApi(given.app, "grpc-js", given.acme.reader);
  const error = await failure(api.list({ pageSize: 1, pageToken: nextPageToken }));
  api.close();
  expect(error.code).toBe(Code.InvalidArgument);
  expect(error.violations.map((v) => v.field)).toEqual(["page_token"]);
});
