import { timestampDate } from "@bufbuild/protobuf/wkt";
import { beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { clientFor } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { appFixture } from "../support/fixture.js";

const ROUTE = "/api/v1/audit_events_fmp/create";

/** Moved forward to expire sessions. */
const clock = new ManualClock();

const given = appFixture({ clock, env: { MAX_BODY_BYTES: "65536" }, tenants: ["acme", "globex"] });
beforeAll(async () => {
  const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
  await admin.createUser({ tenant: "acme", username: "ann", password: "ann-password", roles: [Role.WRITER] });
  await admin.createUser({ tenant: "acme", username: "guest", password: "guest-password", roles: [] });
});

function post(body: unknown, init: { contentType?: string; path?: string; method?: string } = {}) {
  return fetch(`${given.app.url}${init.path ?? ROUTE}`, {
    method: init.method ?? "POST",
    headers: { "content-type": init.contentType ?? "application/json" },
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** A PlanoAuth response; record and session fields are strings, numbers, arrays or null. */
interface Reply {
  http: number;
  status: string;
  message: string;
  data: { audit_events_fmp?: Record<string, unknown>; session?: Record<string, string | boolean | null> };
}

async function call(body: unknown, init?: Parameters<typeof post>[1]): Promise<Reply> {
  const res = await post(body, init);
  expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
  return { http: res.status, ...((await res.json()) as Omit<Reply, "http">) };
}

async function login(username: string, password: string, rememberMe = false) {
  const admin = clientFor(AdminService, given.app, "connect");
  return (await admin.login({ tenant: "acme", username, password, rememberMe })).token;
}

/** Every event of a tenant, read over gRPC. */
async function stored(token: string) {
  const { events } = await clientFor(AuditService, given.app, "grpc", token).list({
    pageSize: 1000,
    includeChildren: true,
  });
  return events;
}

function record(overrides: Record<string, unknown> = {}) {
  return {
    unique_id: "fmp-0001",
    script_name: "Nightly Export",
    host_name: "fm-server-01",
    file_name: "Invoices.fmp12",
    start_time: "2024-05-01 10:00:00",
    stop_time: "2024-05-01T10:05:30.25Z",
    notes: ["exported 120 records", "no errors"],
    updated_in: "FileMaker Pro 19",
    token: given.acme.writer,
    application: "planoauth",
    ...overrides,
  };
}

describe("the document's request", () => {
  test("every documented parameter, with an API key: action-successful with the stored record", async () => {
    const r = await call(record());
    expect(r.http).toBe(200);
    expect(r.status).toBe("action-successful");
    const fmp = r.data.audit_events_fmp ?? {};
    expect(fmp).toMatchObject({
      unique_id: "fmp-0001",
      script_name: "Nightly Export",
      host_name: "fm-server-01",
      file_name: "Invoices.fmp12",
      start_time: "2024-05-01T10:00:00.000000Z",
      stop_time: "2024-05-01T10:05:30.250000Z",
      notes: ["exported 120 records", "no errors"],
      updated_in: "FileMaker Pro 19",
      application: "planoauth",
    });
    expect(typeof fmp.id).toBe("number");
    expect(String(fmp.created_at)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(fmp.updated_at).toBe(fmp.created_at);
    expect(r.data.session).toBeUndefined();
  });

  test("only the required parameters", async () => {
    const r = await call({
      unique_id: "fmp-min",
      script_name: "s",
      host_name: "h",
      file_name: "f",
      start_time: "2024-05-01T10:00:00+02:00",
      token: given.acme.writer,
    });
    expect(r.status).toBe("action-successful");
    expect(r.data.audit_events_fmp).toMatchObject({
      start_time: "2024-05-01T08:00:00.000000Z",
      stop_time: null,
      notes: null,
      updated_in: null,
      application: null,
    });
  });

  test("a base64-encoded body, raw or as a JSON string, is accepted", async () => {
    const encoded = Buffer.from(JSON.stringify(record({ unique_id: "fmp-b64" }))).toString("base64");
    const raw = await call(encoded);
    expect(raw.status).toBe("action-successful");
    expect(raw.data.audit_events_fmp?.unique_id).toBe("fmp-b64");
    const quoted = await call(
      JSON.stringify(Buffer.from(JSON.stringify(record({ unique_id: "fmp-b64s" }))).toString("base64")),
    );
    expect(quoted.status).toBe("action-successful");
  });

  test("a session token: the response carries the session object", async () => {
    const token = await login("ann", "ann-password");
    const r = await call(record({ unique_id: "fmp-session", token }));
    expect(r.status).toBe("action-successful");
    expect(r.data.session).toMatchObject({ token, username: "ann", tenant: "acme", remember_me: false });
    const session = r.data.session ?? {};
    const created = Date.parse(String(session.created_at));
    expect(Date.parse(String(session.expires_at)) - created).toBe(72 * 3600 * 1000);
    expect(Date.parse(String(session.last_used_at))).toBeGreaterThanOrEqual(created);
    const [event] = (await stored(given.acme.reader)).filter((e) => e.id === "fmp-session");
    expect(event?.actor).toMatchObject({ type: "user", name: "ann" });
  });

  test("a remember_me session never expires", async () => {
    const token = await login("ann", "ann-password", true);
    const r = await call(record({ unique_id: "fmp-remember", token }));
    expect(r.data.session).toMatchObject({ remember_me: true, expires_at: null });
  });
});

describe("statuses", () => {
  test("invalid-token: unknown, malformed, revoked", async () => {
    for (const token of ["at_not-a-real-token", "has spaces in it", "line\nbreak"]) {
      const r = await call(record({ unique_id: "fmp-bad-token", token }));
      expect([r.http, r.status]).toEqual([401, "invalid-token"]);
    }
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
    const { credential, token } = await admin.createApiKey({ tenant: "acme", name: "doomed", roles: [Role.WRITER] });
    await admin.revokeCredential({ tenant: "acme", id: credential?.id ?? "" });
    const revoked = await call(record({ unique_id: "fmp-bad-token", token }));
    expect([revoked.http, revoked.status]).toEqual([401, "invalid-token"]);
    expect(revoked.message).toMatch(/revoked/);
  });

  test("invalid-token: a key without the writer role, or a global credential", async () => {
    const reader = await call(record({ unique_id: "fmp-bad-token", token: given.acme.reader }));
    expect([reader.http, reader.status]).toEqual([401, "invalid-token"]);
    expect(reader.message).toMatch(/writer/);
    const global = await call(record({ unique_id: "fmp-bad-token", token: given.app.adminToken }));
    expect([global.http, global.status]).toEqual([401, "invalid-token"]);
  });

  test("client-required: a role-less session still gets its session object; a role-less key gets none", async () => {
    const token = await login("guest", "guest-password");
    const r = await call(record({ unique_id: "fmp-guest", token }));
    expect([r.http, r.status]).toEqual([401, "client-required"]);
    expect(r.data.session).toMatchObject({ token, username: "guest", tenant: "acme" });
    const key = await call(record({ unique_id: "fmp-guest", token: given.acme.noRole }));
    expect([key.http, key.status, key.data]).toEqual([401, "client-required", {}]);
  });

  test("session-expired: 72 hours unused, and 7 days old however used", async () => {
    const idle = await login("ann", "ann-password");
    const aged = await login("ann", "ann-password");
    const remembered = await login("ann", "ann-password", true);
    let moved = 0;
    const advance = (hours: number) => {
      clock.advanceHours(hours - moved);
      moved = hours;
    };
    try {
      advance(71);
      expect((await call(record({ unique_id: "fmp-aged-1", token: aged }))).status).toBe("action-successful");
      advance(73);
      const r = await call(record({ unique_id: "fmp-idle", token: idle }));
      expect([r.http, r.status]).toEqual([401, "session-expired"]);
      advance(142);
      expect((await call(record({ unique_id: "fmp-aged-2", token: aged }))).status).toBe("action-successful");
      advance(7 * 24 + 1);
      const old = await call(record({ unique_id: "fmp-aged-3", token: aged }));
      expect([old.http, old.status]).toEqual([401, "session-expired"]);
      expect((await call(record({ unique_id: "fmp-remembered", token: remembered }))).status).toBe("action-successful");
    } finally {
      advance(0);
    }
  });

  test.each(["unique_id", "script_name", "host_name", "file_name", "start_time", "token"])(
    "missing-param names %s",
    async (name) => {
      const body: Record<string, unknown> = record({ unique_id: "fmp-missing" });
      delete body[name];
      const r = await call(body);
      expect([r.http, r.status]).toEqual([400, "missing-param"]);
      expect(r.message).toContain(name);
    },
  );

  test.each([
    ["start_time", { start_time: "05/01/2024" }, "start_time"],
    ["a day that does not exist", { start_time: "2024-02-30 10:00:00" }, "start_time"],
    ["stop_time", { stop_time: "tomorrow" }, "stop_time"],
    ["stop before start", { stop_time: "2024-05-01 09:00:00" }, "stop_time: must not be before start_time"],
    ["the future", { start_time: "2999-01-01 00:00:00" }, "start_time"],
    ["application", { application: "planoquote" }, "application must be one of planoauth, planoorder, planox2"],
    ["notes type", { notes: "one note" }, "notes must be an array"],
    ["a note's type", { notes: ["ok", 7] }, "notes[1]"],
    ["script_name type", { script_name: 12 }, "script_name must be a string"],
    ["token type", { token: 12345 }, "token must be a string"],
    ["unique_id characters", { unique_id: "has spaces" }, "unique_id"],
    ["host_name length", { host_name: "h".repeat(300) }, "host_name"],
    ["an unknown parameter", { colour: "blue" }, "colour is not a parameter"],
    ["parameters named like the response", { status: "x", message: "y" }, "status is not a parameter"],
  ])("invalid-param: %s", async (_what, overrides, message) => {
    const r = await call(record({ unique_id: "fmp-invalid", ...overrides }));
    expect([r.http, r.status]).toEqual([400, "invalid-param"]);
    expect(r.message).toContain(message);
  });

  test("invalid-param: a unique_id reused with different content", async () => {
    expect((await call(record({ unique_id: "fmp-reuse" }))).status).toBe("action-successful");
    const r = await call(record({ unique_id: "fmp-reuse", script_name: "Another Script" }));
    expect([r.http, r.status]).toEqual([400, "invalid-param"]);
    expect(r.message).toContain("unique_id");
  });

  test.each([
    ["text/plain", "text/plain"],
    ["a form", "application/x-www-form-urlencoded"],
    ["XML", "application/xml"],
  ])("invalid-content-type: %s", async (_what, contentType) => {
    const r = await call(record({ unique_id: "fmp-ct" }), { contentType });
    expect([r.http, r.status]).toEqual([400, "invalid-content-type"]);
  });

  test.each([
    ["an empty object", "{}"],
    ["an empty body", ""],
    ["base64 of an empty object", Buffer.from("{}").toString("base64")],
  ])("no-params-decoded: %s", async (_what, body) => {
    const r = await call(body);
    expect([r.http, r.status]).toEqual([400, "no-params-decoded"]);
  });

  test.each([
    ["malformed JSON", '{"unique_id": "x",'],
    ["a JSON array", "[1, 2]"],
    ["base64 of something that is not JSON", Buffer.from("not json").toString("base64")],
    ["neither JSON nor base64", "%%%"],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0x7d])],
    ["a body over the limit", () => JSON.stringify(record({ notes: ["x".repeat(70_000)] }))],
  ])("invalid-encoded-params: %s", async (_what, body) => {
    const r = await call(typeof body === "function" ? body() : body);
    expect([r.http, r.status]).toEqual([400, "invalid-encoded-params"]);
  });

  test("route-non-existent: other paths under /api and other methods", async () => {
    for (const [path, method] of [
      ["/api/v1/audit_events_fmp/update", "POST"],
      ["/api/v2/whatever", "POST"],
      [ROUTE, "PUT"],
    ] as const) {
      const r = await call(record({ unique_id: "fmp-route" }), { path, method });
      expect([r.http, r.status]).toEqual([500, "route-non-existent"]);
    }
    const get = await fetch(`${given.app.url}${ROUTE}`);
    expect(get.status).toBe(500);
    expect(((await get.json()) as { status: string }).status).toBe("route-non-existent");
  });

  test("nothing was stored by any refused request", async () => {
    const ids = (await stored(given.acme.reader)).map((e) => e.id);
    for (const refused of ["fmp-bad-token", "fmp-guest", "fmp-missing", "fmp-invalid", "fmp-ct", "fmp-route"]) {
      expect(ids).not.toContain(refused);
    }
    expect(ids).not.toContain("fmp-idle");
    expect(ids).not.toContain("fmp-aged-3");
  });
});

describe("idempotency, tenants and the round trip", () => {
  test("a replay returns the stored record and stores nothing more", async () => {
    const first = await call(record({ unique_id: "fmp-replay" }));
    const again = await call(record({ unique_id: "fmp-replay" }));
    expect(again.status).toBe("action-successful");
    expect(again.data).toEqual(first.data);
    expect((await stored(given.acme.reader)).filter((e) => e.id === "fmp-replay")).toHaveLength(1);
  });

  test("the same unique_id in another tenant is another record, invisible to the first", async () => {
    const a = await call(record({ unique_id: "fmp-shared" }));
    const g = await call(record({ unique_id: "fmp-shared", script_name: "Globex Script", token: given.globex.writer }));
    expect(g.status).toBe("action-successful");
    const acmeEvent = (await stored(given.acme.reader)).find((e) => e.id === "fmp-shared");
    const globexEvent = (await stored(given.globex.reader)).find((e) => e.id === "fmp-shared");
    expect(acmeEvent?.attributes?.script_name).toBe("Nightly Export");
    expect(globexEvent?.attributes?.script_name).toBe("Globex Script");
    expect(globexEvent?.tenant).toBe("globex");
    expect(a.data.audit_events_fmp?.id).toBe(Number(acmeEvent?.sequence));
  });

  test("written here, read back through List over gRPC and through GET /audit", async () => {
    const r = await call(record({ unique_id: "fmp-roundtrip", application: "planox2" }));
    const [event] = (await stored(given.acme.reader)).filter((e) => e.id === "fmp-roundtrip");
    expect(event).toMatchObject({
      id: "fmp-roundtrip",
      tenant: "acme",
      action: "audit_events_fmp.create",
      source: "fm-server-01",
      target: { type: "file", name: "Invoices.fmp12", id: "" },
      actor: { type: "api_key", name: "writer" },
      attributes: {
        script_name: "Nightly Export",
        notes: ["exported 120 records", "no errors"],
        updated_in: "FileMaker Pro 19",
        application: "planox2",
      },
    });
    expect(event?.occurredAt && timestampDate(event.occurredAt).toISOString()).toBe("2024-05-01T10:00:00.000Z");
    expect(event?.completedAt && timestampDate(event.completedAt).toISOString()).toBe("2024-05-01T10:05:30.250Z");
    expect(Number(event?.sequence)).toBe(r.data.audit_events_fmp?.id);

    const res = await fetch(`${given.app.url}/audit?startDate=05/01/2024&stopDate=05/01/2024`, {
      headers: { authorization: `Bearer ${given.acme.reader}`, accept: "application/json" },
    });
    expect(res.status).toBe(200);
    const { audit } = (await res.json()) as { audit: Record<string, unknown>[] };
    expect(audit.find((a) => a.id === r.data.audit_events_fmp?.id)).toMatchObject({
      accountId: Number(given.acme.numericId),
      occurredOn: Date.parse("2024-05-01T10:00:00Z"),
      username: "writer",
      eventType: "audit_events_fmp.create",
      entityId: null,
      eventResultCode: null,
    });
  });

  test("application-crash: the database is unreachable", async () => {
    await given.app.app.database.close(0);
    const r = await call(record({ unique_id: "fmp-crash" }));
    expect([r.http, r.status]).toEqual([500, "application-crash"]);
    expect(r.message).not.toMatch(/select|insert|at .*\.ts/i);
  });
});
