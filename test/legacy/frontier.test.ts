import { randomUUID } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import postgres from "postgres";
import { beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import type { TestApp } from "../support/app.js";
import { clientFor, type TenantTokens } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { expiringWriters } from "../support/expiring.js";
import { appFixture } from "../support/fixture.js";

const given = appFixture({ tenants: ["acme", "globex"] });

interface PostOptions {
  token?: string | null;
  contentType?: string;
  raw?: string;
  method?: string;
  base?: TestApp;
}

function post(org: string, body: unknown, options: PostOptions = {}) {
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/json" };
  const token = options.token === undefined ? given.acme.writer : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(`${(options.base ?? given.app).url}/v1beta1/organizations/${org}/auditlogs`, {
    method: options.method ?? "POST",
    headers,
    body: options.method === "GET" ? undefined : (options.raw ?? JSON.stringify(body)),
  });
}

interface Status {
  code: number;
  message: string;
  details: Array<Record<string, unknown> & { "@type": string }>;
}

/** The google.rpc.Status of a failed call, checked for shape, with its ErrorInfo reason and violated fields. */
async function status(res: Response, httpStatus: number, code: number) {
  expect(res.status).toBe(httpStatus);
  expect(res.headers.get("content-type")).toBe("application/json");
  const body = (await res.json()) as Status;
  expect(body.code).toBe(code);
  expect(typeof body.message).toBe("string");
  expect(Array.isArray(body.details)).toBe(true);
  const info = body.details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.ErrorInfo");
  const badRequest = body.details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest") as
    | { fieldViolations: Array<{ field: string; description: string }> }
    | undefined;
  return {
    body,
    reason: info?.reason as string | undefined,
    fields: badRequest?.fieldViolations.map((v) => v.field) ?? [],
  };
}

async function listActions(tokens: TenantTokens, prefix: string) {
  const client = clientFor(AuditService, given.app, "grpc", tokens.reader);
  const { events } = await client.list({ actions: [`${prefix}*`], pageSize: 1000, order: 2 });
  return events;
}

describe("POST /v1beta1/organizations/{org_id}/auditlogs", () => {
  test("stores the documented fields, answers 200 {}, and every field reads back over gRPC", async () => {
    const id = randomUUID();
    const res = await post("acme", {
      logs: [
        {
          id,
          source: "frontier",
          action: "project.create",
          actor: { id: "u-1", type: "app/user", name: "Ada Lovelace" },
          target: { id: "p-9", type: "app/project", name: "Apollo" },
          context: { ip: "10.0.0.1", reason: "quarterly" },
          created_at: "2024-05-01T12:30:15.250Z",
        },
        { source: "frontier", action: "project.create.minimal" },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({});

    const events = await listActions(given.acme, "project.create");
    expect(events).toHaveLength(2);
    const full = events.find((e) => e.id === id);
    expect(full?.tenant).toBe("acme");
    expect(full?.source).toBe("frontier");
    expect(full?.action).toBe("project.create");
    expect(full?.actor).toMatchObject({ id: "u-1", type: "app/user", name: "Ada Lovelace" });
    expect(full?.target).toMatchObject({ id: "p-9", type: "app/project", name: "Apollo" });
    expect(full?.attributes).toEqual({ ip: "10.0.0.1", reason: "quarterly" });
    expect(full?.occurredAt && timestampDate(full.occurredAt).toISOString()).toBe("2024-05-01T12:30:15.250Z");
    const minimal = events.find((e) => e.action === "project.create.minimal");
    // No id given: one is generated (a UUIDv7), and occurred_at defaults to when it was received.
    expect(minimal?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(minimal?.occurredAt).toEqual(minimal?.receivedAt);
    expect(minimal?.actor).toBeUndefined();
    expect(minimal?.attributes).toBeUndefined();
  });

  test("org_id may be the organization's numeric id, and createdAt the JSON name of created_at", async () => {
    const res = await post(String(given.acme.numericId), {
      logs: [{ source: "s", action: "numeric.org", createdAt: "2024-01-02T03:04:05Z" }],
    });
    expect(res.status).toBe(200);
    const [event] = await listActions(given.acme, "numeric.org");
    expect(event?.tenant).toBe("acme");
    expect(event?.occurredAt && timestampDate(event.occurredAt).toISOString()).toBe("2024-01-02T03:04:05.000Z");
  });

  test("a replay with the same ids stores nothing new; the same id with other content is 409", async () => {
    const body = {
      logs: [
        { id: "replay-1", source: "s", action: "replay.a", context: { n: "1" } },
        { id: "replay-2", source: "s", action: "replay.b", created_at: "2024-03-01T00:00:00Z" },
      ],
    };
    expect((await post("acme", body)).status).toBe(200);
    expect((await post("acme", body)).status).toBe(200);
    expect((await listActions(given.acme, "replay.")).map((e) => e.id).sort()).toEqual(["replay-1", "replay-2"]);

    const changed = { logs: [body.logs[0], { ...body.logs[1], action: "replay.changed" }] };
    const { body: error, reason } = await status(await post("acme", changed), 409, 6);
    expect(reason).toBe("DUPLICATE_ID");
    expect(error.message).toContain("logs[1].id");
    expect(await listActions(given.acme, "replay.changed")).toHaveLength(0);
  });

  test("the batch is atomic: one invalid log stores none of them", async () => {
    const res = await post("acme", {
      logs: [{ source: "s", action: "atomic.ok" }, { source: "s" }, { source: "s", action: "x".repeat(300) }],
    });
    const { fields, reason } = await status(res, 400, 3);
    expect(reason).toBe("MISSING_FIELD");
    expect(fields).toEqual(["logs[1].action"]);
    expect(await listActions(given.acme, "atomic.")).toHaveLength(0);
  });

  test.each<[string, unknown, string[]]>([
    ["logs missing", {}, ["logs"]],
    ["logs not an array", { logs: { source: "s" } }, ["logs"]],
    ["logs empty", { logs: [] }, ["logs"]],
    ["a log not an object", { logs: ["s"] }, ["logs[0]"]],
    ["source and action missing", { logs: [{ id: "a" }] }, ["logs[0].source", "logs[0].action"]],
    ["a number for a string", { logs: [{ source: 5, action: "a" }] }, ["logs[0].source"]],
    ["actor not an object", { logs: [{ source: "s", action: "a", actor: "ada" }] }, ["logs[0].actor"]],
    ["actor.id a number", { logs: [{ source: "s", action: "a", actor: { id: 7 } }] }, ["logs[0].actor.id"]],
    ["an unknown target field", { logs: [{ source: "s", action: "a", target: { urn: "x" } }] }, ["logs[0].target.urn"]],
    [
      "a context value not a string",
      { logs: [{ source: "s", action: "a", context: { n: 1 } }] },
      ["logs[0].context.n"],
    ],
    [
      "created_at not a date-time",
      { logs: [{ source: "s", action: "a", created_at: "yesterday" }] },
      ["logs[0].created_at"],
    ],
    ["created_at a number", { logs: [{ source: "s", action: "a", created_at: 1714566000 }] }, ["logs[0].created_at"]],
    ["an unknown log field", { logs: [{ source: "s", action: "a", severity: "high" }] }, ["logs[0].severity"]],
    ["an unknown body field", { logs: [{ source: "s", action: "a" }], org: "acme" }, ["org"]],
    // Checked by BatchCreate, reported under Frontier's names.
    ["an action over 256 characters", { logs: [{ source: "s", action: "a".repeat(257) }] }, ["logs[0].action"]],
    ["an id with a space", { logs: [{ id: "a b", source: "s", action: "a" }] }, ["logs[0].id"]],
    [
      "a repeated id",
      {
        logs: [
          { id: "d", source: "s", action: "a" },
          { id: "d", source: "s", action: "b" },
        ],
      },
      ["logs[1].id"],
    ],
    [
      "created_at two days ahead",
      { logs: [{ source: "s", action: "a", created_at: new Date(Date.now() + 2 * 86400e3).toISOString() }] },
      ["logs[0].created_at"],
    ],
    [
      "a context over 64 KiB",
      { logs: [{ source: "s", action: "a", context: { big: "x".repeat(70_000) } }] },
      ["logs[0].context"],
    ],
    ["more than 1000 logs", { logs: Array.from({ length: 1001 }, () => ({ source: "s", action: "a" })) }, ["logs"]],
    // A value of the wrong JSON type stops decoding, so it is the one fault reported, however many follow.
    ["5000 mistyped logs", { logs: Array.from({ length: 5000 }, () => ({ source: 1 })) }, ["logs[0].source"]],
  ])("400 naming the field: %s", async (_name, body, expected) => {
    const { fields, body: error } = await status(await post("acme", body), 400, 3);
    expect(fields).toEqual(expected);
    expect(error.message).toContain(expected[0]);
    expect(error.message).not.toMatch(/events|occurred_at|attributes/);
  });

  test("malformed JSON, a non-object body, the wrong content type and an oversized body are refused", async () => {
    const malformed = await status(await post("acme", undefined, { raw: '{"logs": [' }), 400, 3);
    expect(malformed.reason).toBe("MALFORMED_BODY");
    const array = await status(await post("acme", [{ source: "s", action: "a" }]), 400, 3);
    expect(array.reason).toBe("MALFORMED_BODY");
    const form = await status(await post("acme", undefined, { raw: "logs=1", contentType: "text/plain" }), 415, 3);
    expect(form.reason).toBe("UNSUPPORTED_MEDIA_TYPE");
    const big = JSON.stringify({
      logs: [{ source: "s", action: "big", context: { x: "y".repeat(4.5 * 1024 * 1024) } }],
    });
    const tooLarge = await status(await post("acme", undefined, { raw: big }), 413, 8);
    expect(tooLarge.reason).toBe("BODY_TOO_LARGE");
    expect(await listActions(given.acme, "big")).toHaveLength(0);
  });

  test("401 without a credential or with a wrong one, before the organization is looked up", async () => {
    const body = { logs: [{ source: "s", action: "unauth" }] };
    const missing = await status(await post("acme", body, { token: null }), 401, 16);
    expect(missing.reason).toBe("MISSING_CREDENTIAL");
    const wrong = await status(await post("acme", body, { token: "at_not_a_real_token" }), 401, 16);
    expect(wrong.reason).toBe("INVALID_TOKEN");
    expect(wrong.body.message).not.toContain("at_not_a_real_token");
    // An unknown organization does not tell an anonymous caller that it is unknown.
    const unknown = await status(await post("no-such-org", body, { token: null }), 401, 16);
    expect(unknown.reason).toBe("MISSING_CREDENTIAL");
    expect(await listActions(given.acme, "unauth")).toHaveLength(0);
  });

  test("403 for another organization's credential or one that may not write; nothing stored", async () => {
    const body = { logs: [{ source: "s", action: "forbidden" }] };
    const other = await status(await post("acme", body, { token: given.globex.writer }), 403, 7);
    expect(other.reason).toBe("TENANT_MISMATCH");
    expect(other.body.message).toContain("acme");
    const reader = await status(await post("acme", body, { token: given.acme.reader }), 403, 7);
    expect(reader.reason).toBe("INSUFFICIENT_ROLE");
    const noRole = await status(await post("acme", body, { token: given.acme.noRole }), 403, 7);
    expect(noRole.reason).toBe("NO_ROLE");
    expect(await listActions(given.acme, "forbidden")).toHaveLength(0);
    expect(await listActions(given.globex, "forbidden")).toHaveLength(0);
  });

  test("404 for an unknown organization, by slug or by number, to a superadmin; 403 to anyone else", async () => {
    const body = { logs: [{ source: "s", action: "a" }] };
    for (const org of ["no-such-org", "999999999"]) {
      const { reason, body: error } = await status(await post(org, body, { token: given.app.adminToken }), 404, 5);
      expect(reason).toBe("TENANT_NOT_FOUND");
      expect(error.message).toContain(org);
      // As for another tenant's organization that exists: a tenant's key learns nothing of other tenants.
      expect((await status(await post(org, body), 403, 7)).reason).toBe("TENANT_MISMATCH");
    }
    const malformed = await status(await post("%zz", body), 400, 3);
    expect(malformed.reason).toBe("MALFORMED_PATH");
  });

  test("405 for methods the contract does not bind on the route", async () => {
    const res = await post("acme", undefined, { method: "PUT" });
    await status(res, 405, 12);
    expect(res.headers.get("allow")).toBe("GET, POST");
  });

  test("HTTP Basic works too, the tenant of the user name coming from org_id", async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
    await admin.createUser({ username: "frontier.bot", password: "long enough secret", roles: [Role.WRITER] });
    const res = await fetch(`${given.app.url}/v1beta1/organizations/acme/auditlogs`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        authorization: `Basic ${Buffer.from("frontier.bot:long enough secret").toString("base64")}`,
      },
      body: JSON.stringify({ logs: [{ source: "s", action: "basic.auth" }] }),
    });
    expect(res.status).toBe(200);
    expect(await listActions(given.acme, "basic.auth")).toHaveLength(1);
  });

  test("a superadmin writes to any organization; each organization lists only its own logs", async () => {
    expect(
      (await post("globex", { logs: [{ source: "s", action: "isolated.globex" }] }, { token: given.app.adminToken }))
        .status,
    ).toBe(200);
    expect((await post("acme", { logs: [{ source: "s", action: "isolated.acme" }] })).status).toBe(200);
    expect((await listActions(given.globex, "isolated.")).map((e) => e.action)).toEqual(["isolated.globex"]);
    expect((await listActions(given.acme, "isolated.")).map((e) => e.action)).toEqual(["isolated.acme"]);
  });
});

describe("when the database fails in an unexpected way", () => {
  const broken = appFixture({ tenants: ["acme"] });
  beforeAll(async () => {
    const sql = postgres(broken.app.databaseUrl, { max: 1, onnotice: () => {} });
    await sql`alter table events rename column source to source_renamed`;
    await sql.end();
  });

  test("500 with a request id and no detail of the failure", async () => {
    const res = await post(
      "acme",
      { logs: [{ source: "s", action: "a" }] },
      { base: broken.app, token: broken.acme.writer },
    );
    const { body, reason } = await status(res, 500, 13);
    expect(reason).toBe("INTERNAL");
    expect(body.message).toMatch(/^internal error \(request id [0-9a-f-]{36}\)$/);
  });
});

// Expiry needs a clock the test moves: a service of its own, so no other test sees the time jump.
describe("401 for an expired key or session", () => {
  const clock = new ManualClock();
  const timed = appFixture({ clock, env: { CREDENTIAL_CACHE_MS: "0" }, tenants: ["acme"] });

  test("an expired key is CREDENTIAL_EXPIRED and an expired session SESSION_EXPIRED, after both were accepted", async () => {
    const { key, session, expire } = await expiringWriters(timed.app, "acme", timed.acme, clock);
    const body = { logs: [{ source: "s", action: "expiry" }] };
    for (const token of [key, session]) {
      expect((await post("acme", body, { base: timed.app, token })).status).toBe(200);
    }
    expire();
    const expiredKey = await status(await post("acme", body, { base: timed.app, token: key }), 401, 16);
    expect(expiredKey.reason).toBe("CREDENTIAL_EXPIRED");
    const expiredSession = await status(await post("acme", body, { base: timed.app, token: session }), 401, 16);
    expect(expiredSession.reason).toBe("SESSION_EXPIRED");
  });
});
