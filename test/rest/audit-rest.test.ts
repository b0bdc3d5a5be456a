import { fromJson, type JsonObject, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { type Client, Code } from "@connectrpc/connect";
import { beforeAll, describe, expect, test } from "vitest";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import {
  AuditService,
  BatchCreateResponseSchema,
  CreateResponseSchema,
  type ListRequestSchema,
  ListResponseSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { clientFor, type TenantTokens } from "../support/clients.js";
import { failureOf } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";

// The audit.v1 routes end to end: each REST call next to the same call over Connect, on one running service.
let audit: Client<typeof AuditService>;
const given = appFixture({ tenants: ["acme"] });
beforeAll(async () => {
  audit = clientFor(AuditService, given.app, "connect", given.acme.readerWriter);
});

async function rest(method: string, path: string, options: { token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(given.app.url + path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: JSON whose shape each test asserts
  return { status: res.status, headers: res.headers, text, json: JSON.parse(text) as any };
}

const event = (id: string, extra: JsonObject = {}): JsonObject => ({
  id,
  action: "project.create",
  category: "Projects",
  actor: { id: "u1", name: "Ann", roles: ["owner"] },
  target: { id: "p1", type: "project" },
  outcome: { status: "OUTCOME_STATUS_SUCCESS", code: "200" },
  attributes: { plan: "pro", seats: 3, tags: ["a", "b"] },
  occurredAt: "2024-05-01T10:00:00Z",
  ...extra,
});

describe("writes", () => {
  test("Create over REST stores exactly what Connect then reads back", async () => {
    const reply = await rest("POST", "/v1/tenants/acme/events", { token: given.acme.writer, body: event("rest-1") });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.json.event).toMatchObject({ id: "rest-1", tenant: "acme", action: "project.create" });
    expect(reply.headers.get("x-request-id")).toBeTruthy();
    const { events } = await audit.list({ tenant: "acme", actions: ["project.create"] });
    const stored = events.find((e) => e.id === "rest-1");
    expect(reply.json).toEqual(toJson(CreateResponseSchema, { $typeName: "audit.v1.CreateResponse", event: stored }));
  });

  test("Create over Connect and over REST answer the same JSON for the same idempotent event", async () => {
    const input = event("same-1", { action: "user.login" });
    const viaConnect = await audit.create({ tenant: "acme", event: fromJson(AuditEventSchema, input) });
    const viaRest = await rest("POST", "/v1/tenants/acme/events", { token: given.acme.writer, body: input });
    expect(viaRest.status).toBe(200);
    expect(viaRest.json).toEqual(toJson(CreateResponseSchema, viaConnect));
  });

  test("BatchCreate over REST returns the stored events, as List shows them", async () => {
    const body = { events: [event("batch-1"), event("batch-2", { action: "project.delete" })] };
    const reply = await rest("POST", "/v1/tenants/acme/events:batchCreate", { token: given.acme.writer, body });
    expect(reply.status, reply.text).toBe(200);
    const { events } = await audit.list({ tenant: "acme", order: 2 });
    const stored = events.filter((e) => e.id.startsWith("batch-"));
    expect(reply.json).toEqual(
      toJson(BatchCreateResponseSchema, { $typeName: "audit.v1.BatchCreateResponse", events: stored }),
    );
  });
});

type ListInit = MessageInitShape<typeof ListRequestSchema>;

describe("List: query parameters give the same page as Connect", () => {
  beforeAll(async () => {
    const more = Array.from({ length: 5 }, (_, i) =>
      event(`list-${i}`, {
        action: i % 2 ? "doc.read" : "doc.write",
        actor: { id: `u${i % 2}` },
        occurredAt: `2024-06-0${i + 1}T00:00:00Z`,
        outcome: { status: i === 4 ? "OUTCOME_STATUS_FAILURE" : "OUTCOME_STATUS_SUCCESS" },
      }),
    );
    await audit.batchCreate({ tenant: "acme", events: more.map((e) => fromJson(AuditEventSchema, e)) });
  });

  const cases: Array<{ query: string; same: ListInit }> = [
    { query: "", same: {} },
    { query: "?pageSize=2", same: { pageSize: 2 } },
    { query: "?page_size=3&order=ORDER_OLDEST_FIRST", same: { pageSize: 3, order: 2 } },
    { query: "?actions=doc.*&actions=user.login", same: { actions: ["doc.*", "user.login"] } },
    { query: "?actorId=u1", same: { actorId: "u1" } },
    {
      query: "?startTime=2024-06-02T00:00:00Z&end_time=2024-06-04T00:00:00Z",
      same: { startTime: { seconds: 1717286400n }, endTime: { seconds: 1717459200n } },
    },
    { query: "?outcome=OUTCOME_STATUS_FAILURE", same: { outcome: 2 } },
    { query: "?outcome=2&includeChildren=true&activeOnly=false", same: { outcome: 2, includeChildren: true } },
  ];
  test.each(cases)("GET /v1/tenants/acme/events$query", async ({ query, same }) => {
    const reply = await rest("GET", `/v1/tenants/acme/events${query}`, { token: given.acme.reader });
    expect(reply.status, reply.text).toBe(200);
    const viaConnect = toJson(ListResponseSchema, await audit.list({ tenant: "acme", ...same }));
    expect(reply.json).toEqual(viaConnect);
    expect(reply.json.events?.length ?? 0).toBeGreaterThan(0);
  });

  test("a page token from REST continues the listing as it does over Connect", async () => {
    const first = await rest("GET", "/v1/tenants/acme/events?pageSize=2", { token: given.acme.reader });
    const token = first.json.nextPageToken as string;
    expect(token).toBeTruthy();
    const second = await rest("GET", `/v1/tenants/acme/events?pageSize=2&pageToken=${encodeURIComponent(token)}`, {
      token: given.acme.reader,
    });
    const viaConnect = await audit.list({ tenant: "acme", pageSize: 2, pageToken: token });
    expect(second.json).toEqual(toJson(ListResponseSchema, viaConnect));
  });
});

describe("errors: the same code, message and reason as over Connect", () => {
  const cases: Array<{
    name: string;
    method: string;
    path: string;
    token?: keyof TenantTokens;
    body?: unknown;
    status: number;
    connect: (tokens: TenantTokens) => Promise<unknown>;
  }> = [
    {
      name: "no credential",
      method: "GET",
      path: "/v1/tenants/acme/events",
      status: 401,
      connect: () => clientFor(AuditService, given.app, "connect").list({ tenant: "acme" }),
    },
    {
      name: "a reader writing",
      method: "POST",
      path: "/v1/tenants/acme/events",
      token: "reader",
      body: event("denied"),
      status: 403,
      connect: (t) =>
        clientFor(AuditService, given.app, "connect", t.reader).create({ tenant: "acme", event: { action: "x" } }),
    },
    {
      name: "another tenant's log",
      method: "GET",
      path: "/v1/tenants/globex/events",
      token: "reader",
      status: 403,
      connect: (t) => clientFor(AuditService, given.app, "connect", t.reader).list({ tenant: "globex" }),
    },
    {
      name: "an event without an action",
      method: "POST",
      path: "/v1/tenants/acme/events",
      token: "writer",
      body: { id: "no-action" },
      status: 400,
      connect: (t) =>
        clientFor(AuditService, given.app, "connect", t.writer).create({ tenant: "acme", event: { id: "no-action" } }),
    },
    {
      name: "a reused id with different content",
      method: "POST",
      path: "/v1/tenants/acme/events",
      token: "writer",
      body: event("rest-1", { action: "changed" }),
      status: 409,
      connect: (t) =>
        clientFor(AuditService, given.app, "connect", t.writer).create({
          tenant: "acme",
          event: { id: "rest-1", action: "changed" },
        }),
    },
  ];
  test.each(cases)("$name → $status", async ({ method, path, token, body, status, connect }) => {
    const reply = await rest(method, path, { token: token ? (given.acme[token] as string) : undefined, body });
    const expected = await failureOf(connect(given.acme));
    expect(reply.status, reply.text).toBe(status);
    expect(reply.json.code).toBe(expected.code);
    // The same message, except that REST names fields relative to its body (docs/rest.md, "Field paths").
    expect(reply.json.message).toBe(expected.rawMessage.replace(/^event\./, ""));
    const reason = expected.findDetails(ErrorInfoSchema)[0]?.reason;
    expect(reason).toBeTruthy();
    expect(reply.json.details).toContainEqual(
      expect.objectContaining({ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason, domain: "audit.v1" }),
    );
  });

  test("an unknown field in the body is refused, not dropped", async () => {
    const reply = await rest("POST", "/v1/tenants/acme/events", {
      token: given.acme.writer,
      body: { action: "x", colour: "red" },
    });
    expect(reply.status).toBe(400);
    expect(reply.json.code).toBe(Code.InvalidArgument);
    expect(reply.json.message).toContain("colour");
  });

  test("a route the contract does not declare is a 404 Status", async () => {
    const reply = await rest("GET", "/v1/tenants/acme/nothing", { token: given.acme.reader });
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({
      code: Code.NotFound,
      details: [expect.objectContaining({ reason: "UNKNOWN_ROUTE" })],
    });
  });
});

describe("admin routes", () => {
  test("an admin creates an API key over REST, and it works over REST and Connect", async () => {
    const created = await rest("POST", "/v1/tenants/acme/apiKeys", {
      token: given.acme.admin,
      body: { name: "rest-key", roles: ["ROLE_READER"] },
    });
    expect(created.status, created.text).toBe(200);
    expect(created.json.credential).toMatchObject({ name: "rest-key", roles: ["ROLE_READER"], tenant: "acme" });
    const token = created.json.token as string;
    const viaRest = await rest("GET", "/v1/tenants/acme/events?pageSize=1", { token });
    expect(viaRest.status).toBe(200);
    const viaConnect = await clientFor(AuditService, given.app, "connect", token).list({ tenant: "acme", pageSize: 1 });
    expect(viaRest.json).toEqual(toJson(ListResponseSchema, viaConnect));
  });

  test("the superadmin lists tenants over REST as over Connect", async () => {
    const reply = await rest("GET", "/v1/tenants", { token: given.app.adminToken });
    const viaConnect = await clientFor(AdminService, given.app, "connect", given.app.adminToken).listTenants({});
    expect(reply.json.tenants.map((t: { id: string }) => t.id)).toEqual(viaConnect.tenants.map((t) => t.id));
    expect(reply.json.tenants.map((t: { id: string }) => t.id)).toContain("acme");
  });
});
