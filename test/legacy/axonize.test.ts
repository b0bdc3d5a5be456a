import { describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { timestampToIso } from "../../src/store/time.js";
import type { TestApp } from "../support/app.js";
import { clientFor } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { expiringWriters } from "../support/expiring.js";
import { appFixture } from "../support/fixture.js";
import { whileTableMissing } from "./outage.js";

const given = appFixture({ env: { MAX_BODY_BYTES: "65536" }, tenants: ["acme", "globex"] });

interface Post {
  path?: string;
  base?: TestApp;
  method?: string;
  authorization?: string | null;
  contentType?: string;
  headers?: Record<string, string>;
}

async function post(body: unknown, init: Post = {}) {
  const headers: Record<string, string> = { "content-type": init.contentType ?? "application/json", ...init.headers };
  const authorization = init.authorization === undefined ? given.acme.writer : init.authorization;
  if (authorization !== null) headers.authorization = authorization;
  const res = await fetch(`${(init.base ?? given.app).url}${init.path ?? "/odata/Audits"}`, {
    method: init.method ?? "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

interface ODataError {
  code: string;
  message: string;
  target?: string;
  details?: { code: string; message: string; target: string }[];
}

async function postError(body: unknown, init?: Post) {
  const res = await post(body, init);
  return { status: res.status, headers: res.headers, error: res.body.error as ODataError };
}

async function stored(token: string) {
  const { events } = await clientFor(AuditService, given.app, "grpc", token).list({ pageSize: 1000 });
  return events;
}

const minimal = { entityName: "device123", entityId: "1321233231123", action: "CreateDevice", category: "Devices" };

/** The document's example response, less what only the server sets, sent as a request. */
const documentExample = {
  "@odata.context": "http://stg-axonizeapi-axonize.stg-ase-axonize.p.azurewebsites.net/odata/$metadata#Audits/$entity",
  entityName: "device123",
  entityId: "1321233231123",
  action: " CreateDevice ",
  category: "Devices",
  userEmail: "System",
  userId: null,
  requestDateTime: "2018-06-17T11:55:01.8164737Z",
  responseDateTime: "2018-06-17T11:55:02.0196423Z",
  application: "fcm2m",
  tenant: "5851631d4e41925b98f08e13",
  correlationId: "a4d94269-9847-4842-91de-663735e3ded5",
  ip: "52.233.142.182",
  result: "BadRequest",
  requestDurationMs: 203.1686,
  requestUrl:
    "http://stg-axonizeapi-axonize.stg-ase-axonize.p.azurewebsites.net/odata/Devices/SendCommandToMultipleDevices",
  actionDisplay: "msg_audit_sendcommandtomultipledevices",
  categoryDisplay: "msg_audit_devices",
  userName: null,
  roles: ["systemadmin"],
  sourceName: null,
  sourceType: "Unknown",
  id: "5b264c16e5cdcf55dc9805b8",
  appId: "be517433-c4b8-4788-9258-1ba220435d63",
  additionalInfo: [
    { key: "commandId", value: "5a966c3e71da9b06b0f932e4" },
    { key: "deviceIds", value: '[\r\n  "5859b09b983df8100836aba1"\r\n]' },
  ],
};

describe("the document's examples", () => {
  test("the example request, verbatim: 201 with the documented defaults", async () => {
    const res = await fetch(`${given.app.url}/odata/audits/`, {
      method: "POST",
      headers: {
        Authorization: given.acme.writer,
        "Content-Type": "application/json",
        appId: "801A048A-9F23-429F-BF0D-B6D35B22771E",
      },
      body: `{
"entityName": "device123",
       "entityId": "1321233231123",
       "action": "CreateDevice",
       "category": "Devices"
}`,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      "@odata.context": `${given.app.url}/odata/$metadata#Audits/$entity`,
      entityName: "device123",
      entityId: "1321233231123",
      action: "CreateDevice",
      category: "Devices",
      userEmail: "System",
      userId: null,
      requestDateTime: null,
      responseDateTime: null,
      application: null,
      tenant: null,
      correlationId: null,
      ip: null,
      isSuccessful: false,
      result: null,
      requestDurationMs: null,
      requestUrl: null,
      actionDisplay: null,
      categoryDisplay: null,
      userName: null,
      roles: null,
      sourceName: null,
      sourceType: "Unknown",
      id: expect.any(String),
      appId: "801A048A-9F23-429F-BF0D-B6D35B22771E",
      createDate: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/),
      createUser: null,
      updateDate: "0001-01-01T00:00:00Z",
      updateUser: null,
      additionalInfo: null,
    });
    expect(Object.keys(body)[0]).toBe("@odata.context");
  });

  test("the example response's properties sent back: each echoed as sent", async () => {
    const { status, body } = await post(documentExample);
    expect(status).toBe(201);
    const { "@odata.context": _context, ...sent } = documentExample;
    expect(body).toMatchObject({ ...sent, isSuccessful: false });
    expect(body.id).toBe("5b264c16e5cdcf55dc9805b8");
  });
});

describe("what the route accepts", () => {
  test.each(["/odata/Audits", "/odata/Audits/", "/odata/audits", "/ODATA/AUDITS/"])("the path %s", async (path) => {
    expect((await post(minimal, { path })).status).toBe(201);
  });

  test("text/json as well as application/json", async () => {
    expect((await post(minimal, { contentType: "text/json; charset=utf-8" })).status).toBe(201);
  });

  test("Bearer tokens as well as bare ones", async () => {
    expect((await post(minimal, { authorization: `Bearer ${given.acme.writer}` })).status).toBe(201);
  });

  test("property names in any case, requestURL as requestUrl, key/value pairs as Key/Value", async () => {
    const { status, body } = await post({
      EntityName: "d",
      ENTITYID: "1",
      action: "UpdateDevice",
      category: "devices",
      requestURL: "https://example.test/odata/Devices",
      sourceType: "rules engine",
      requestDurationMs: "12.5",
      result: 204,
      additionalInfo: [{ Key: "serialNumber", Value: "NewSerialNumber" }],
    });
    expect(status).toBe(201);
    expect(body).toMatchObject({
      entityName: "d",
      entityId: "1",
      category: "Devices",
      requestUrl: "https://example.test/odata/Devices",
      sourceType: "Rules Engine",
      requestDurationMs: 12.5,
      result: 204,
      isSuccessful: true,
      additionalInfo: [{ key: "serialNumber", value: "NewSerialNumber" }],
    });
  });

  test.each([
    ["OK", true],
    ["Created", true],
    ["200", true],
    [299, true],
    ["BadRequest", false],
    ["Unauthorized", false],
    [500, false],
  ])("result %s is successful: %s", async (result, successful) => {
    const { body } = await post({ ...minimal, result });
    expect(body.isSuccessful).toBe(successful);
    const [event] = (await stored(given.acme.reader)).filter((e) => e.id === body.id);
    expect(event?.outcome).toMatchObject({
      code: String(result),
      status: successful ? OutcomeStatus.SUCCESS : OutcomeStatus.FAILURE,
    });
  });

  test("the appId header is used when the body has none; a body appId must agree with it", async () => {
    expect((await post({ ...minimal, appId: "a1" }, { headers: { appId: "a1" } })).body.appId).toBe("a1");
    const { status, error } = await postError({ ...minimal, appId: "a1" }, { headers: { appId: "a2" } });
    expect([status, error.code, error.target]).toEqual([400, "INVALID_FIELD", "appId"]);
  });
});

describe("errors", () => {
  test("400: every missing mandatory property, each named", async () => {
    const { status, error } = await postError({ userName: "ann" });
    expect(status).toBe(400);
    expect(error.code).toBe("MISSING_FIELD");
    expect(error.details?.map((d) => d.target)).toEqual(["entityName", "entityId", "action", "category"]);
  });

  test.each([
    ["an unknown category", { category: "Gadgets" }, "category", "INVALID_FIELD"],
    ["an unknown sourceType", { sourceType: "Mainframe" }, "sourceType", "INVALID_FIELD"],
    ["a number for a string", { entityName: 5 }, "entityName", "INVALID_FIELD"],
    ["roles not an array", { roles: "admin" }, "roles", "INVALID_FIELD"],
    ["a role not a string", { roles: ["a", 1] }, "roles", "INVALID_FIELD"],
    ["a duration that is no number", { requestDurationMs: "fast" }, "requestDurationMs", "INVALID_FIELD"],
    ["a negative duration", { requestDurationMs: -1 }, "requestDurationMs", "INVALID_FIELD"],
    ["a boolean result", { result: true }, "result", "INVALID_FIELD"],
    ["a bad time", { requestDateTime: "17/06/2018" }, "requestDateTime", "INVALID_FIELD"],
    ["a time in the future", { requestDateTime: "2999-01-01T00:00:00Z" }, "requestDateTime", "INVALID_FIELD"],
    [
      "a response before its request",
      { requestDateTime: "2018-06-17T11:55:02Z", responseDateTime: "2018-06-17T11:55:01Z" },
      "responseDateTime",
      "INVALID_FIELD",
    ],
    ["additionalInfo not an array", { additionalInfo: { k: "v" } }, "additionalInfo", "INVALID_FIELD"],
    [
      "an additionalInfo pair without key",
      { additionalInfo: [{ value: "v" }] },
      "additionalInfo[0].key",
      "INVALID_FIELD",
    ],
    [
      "an additionalInfo number value",
      { additionalInfo: [{ key: "k", value: 1 }] },
      "additionalInfo[0].value",
      "INVALID_FIELD",
    ],
    ["an unknown property", { colour: "blue" }, "colour", "INVALID_FIELD"],
    ["a property the server sets", { createDate: "2018-06-17T11:55:02Z" }, "createDate", "INVALID_FIELD"],
    ["a property given twice", { entityname: "again" }, "entityname", "INVALID_FIELD"],
    ["an id the store cannot take", { id: "has spaces" }, "id", "INVALID_FIELD"],
    ["an entityId too long", { entityId: "e".repeat(300) }, "entityId", "INVALID_FIELD"],
  ])("400: %s", async (_what, overrides, target, code) => {
    const { status, error } = await postError({ ...minimal, ...overrides, action: "Refused" });
    expect([status, error.code, error.target]).toEqual([400, code, target]);
    expect(error.message).toContain(target);
  });

  test("the message speaks the document's names", async () => {
    const { error } = await postError({
      ...minimal,
      requestDateTime: "2018-06-17T11:55:02Z",
      responseDateTime: "2018-06-17T11:55:01Z",
    });
    expect(error.message).toBe("responseDateTime must not be before requestDateTime");
  });

  test.each([
    ["malformed JSON", '{"entityName": ', "application/json", "MALFORMED_JSON"],
    ["a JSON array", "[]", "application/json", "MALFORMED_JSON"],
    ["a JSON string", '"text"', "application/json", "MALFORMED_JSON"],
    ["text/plain", JSON.stringify(minimal), "text/plain", "UNSUPPORTED_MEDIA_TYPE"],
    ["XML", "<Audit><entityName>d</entityName></Audit>", "application/xml", "UNSUPPORTED_MEDIA_TYPE"],
    [
      "a body over the limit",
      JSON.stringify({ ...minimal, entityName: "x".repeat(70_000) }),
      "application/json",
      "BODY_TOO_LARGE",
    ],
  ])("400: %s", async (_what, body, contentType, code) => {
    const { status, error } = await postError(body, { contentType });
    expect([status, error.code]).toEqual([400, code]);
  });

  test("401: no credential, a wrong token, a revoked key; with WWW-Authenticate", async () => {
    const admin = clientFor(AdminService, given.app, "connect", given.acme.admin);
    const key = await admin.createApiKey({ tenant: "acme", name: "doomed", roles: [Role.WRITER] });
    await admin.revokeCredential({ tenant: "acme", id: key.credential?.id ?? "" });
    for (const [authorization, code] of [
      [null, "MISSING_CREDENTIAL"],
      ["at_wrong", "INVALID_TOKEN"],
      ["Bearer at_wrong", "INVALID_TOKEN"],
      [key.token, "CREDENTIAL_REVOKED"],
    ] as const) {
      const { status, error, headers } = await postError({ ...minimal, action: "Refused" }, { authorization });
      expect([status, error.code]).toEqual([401, code]);
      expect(headers.get("www-authenticate")).toBe("Bearer");
    }
  });

  test("403: a reader, a key without roles, a global credential", async () => {
    for (const [authorization, code] of [
      [given.acme.reader, "INSUFFICIENT_ROLE"],
      [given.acme.noRole, "NO_ROLE"],
      [given.app.adminToken, "TENANT_MISMATCH"],
    ] as const) {
      const { status, error } = await postError({ ...minimal, action: "Refused" }, { authorization });
      expect([status, error.code]).toEqual([403, code]);
    }
  });

  test("405: other methods", async () => {
    const { status, error, headers } = await postError(minimal, { method: "PUT" });
    expect([status, error.code, headers.get("allow")]).toEqual([405, "METHOD_NOT_ALLOWED", "POST"]);
  });

  test("409: an id reused with different content", async () => {
    expect((await post({ ...minimal, id: "ax-reuse" })).status).toBe(201);
    const { status, error } = await postError({ ...minimal, id: "ax-reuse", entityName: "other" });
    expect([status, error.code, error.target]).toEqual([409, "DUPLICATE_ID", "id"]);
  });

  test("500: the database fails unexpectedly; nothing internal is shown", async () => {
    await whileTableMissing(given.app, "tenant_sequences", async () => {
      const { status, error } = await postError({ ...minimal, action: "Refused" });
      expect([status, error.code]).toEqual([500, "INTERNAL"]);
      expect(error.message).toMatch(/^internal error \(request id [\w-]+\)$/);
    });
  });

  test("nothing was stored by any refused request", async () => {
    const events = await stored(given.acme.reader);
    expect(events.filter((e) => e.action === "Refused")).toEqual([]);
    expect(events.filter((e) => e.target?.name === "other")).toEqual([]);
  });
});

describe("idempotency, tenants and the round trip", () => {
  test("a POST with an id, repeated, answers the same and stores one audit", async () => {
    const first = await post({ ...minimal, id: "ax-replay" });
    const again = await post({ ...minimal, id: "ax-replay" });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect((await stored(given.acme.reader)).filter((e) => e.id === "ax-replay")).toHaveLength(1);
  });

  test("the body's tenant is Axonize data: the audit goes to the caller's tenant only", async () => {
    const { body } = await post(
      { ...minimal, tenant: "acme", id: "ax-tenant" },
      { authorization: given.globex.writer },
    );
    expect((await stored(given.globex.reader)).map((e) => e.id)).toContain("ax-tenant");
    expect((await stored(given.acme.reader)).map((e) => e.id)).not.toContain("ax-tenant");
    expect(body.tenant).toBe("acme");
  });

  test("written here, read back through List over gRPC and through GET /audit", async () => {
    const { body } = await post(
      { ...documentExample, id: "ax-roundtrip", userId: "4711", userName: "ann", sourceName: "portal-eu" },
      { headers: { appId: documentExample.appId } },
    );
    const [event] = (await stored(given.acme.reader)).filter((e) => e.id === "ax-roundtrip");
    expect(event).toMatchObject({
      tenant: "acme",
      action: " CreateDevice ",
      category: "Devices",
      source: "portal-eu",
      target: { id: "1321233231123", name: "device123", type: "Devices" },
      actor: { id: "4711", email: "System", name: "ann", roles: ["systemadmin"] },
      request: {
        ip: "52.233.142.182",
        url: documentExample.requestUrl,
        durationMs: 203.1686,
        correlationId: "a4d94269-9847-4842-91de-663735e3ded5",
      },
      outcome: { code: "BadRequest", status: OutcomeStatus.FAILURE },
      attributes: {
        application: "fcm2m",
        tenant: "5851631d4e41925b98f08e13",
        actionDisplay: "msg_audit_sendcommandtomultipledevices",
        categoryDisplay: "msg_audit_devices",
        sourceType: "Unknown",
        appId: documentExample.appId,
        additionalInfo: documentExample.additionalInfo,
      },
    });
    expect(event?.occurredAt && timestampToIso(event.occurredAt)).toBe("2018-06-17T11:55:01.816473Z");
    expect(event?.completedAt && timestampToIso(event.completedAt)).toBe("2018-06-17T11:55:02.019642Z");
    expect(body.createDate).toBe(event?.receivedAt && timestampToIso(event.receivedAt));

    const res = await fetch(`${given.app.url}/audit?startDate=06/17/2018&stopDate=06/17/2018&userName=ann`, {
      headers: { authorization: given.acme.reader },
    });
    const { audit } = (await res.json()) as { audit: Record<string, unknown>[] };
    expect(audit).toEqual([
      {
        id: Number(event?.sequence),
        accountId: Number(given.acme.numericId),
        occurredOn: Date.parse("2018-06-17T11:55:01.816Z"),
        userId: 4711,
        username: "ann",
        sessionId: null,
        entityId: "1321233231123",
        eventType: " CreateDevice ",
        eventResultCode: "FALSE",
        eventResultFailure: "BadRequest",
        eventInput1: null,
        eventInput2: null,
        eventInput3: null,
        eventOutput1: null,
        eventOutput2: null,
        eventOutput3: null,
      },
    ]);
  });

  test("503: the database is gone", async () => {
    await given.app.app.database.close(0);
    const { status, error, headers } = await postError({ ...minimal, action: "Refused" });
    expect([status, error.code, headers.get("retry-after")]).toEqual([503, "DATABASE_UNAVAILABLE", "1"]);
  });
});

// Expiry needs a clock the test moves: a service of its own, so no other test sees the time jump.
describe("401 for an expired key or session", () => {
  const clock = new ManualClock();
  const timed = appFixture({ clock, env: { CREDENTIAL_CACHE_MS: "0" }, tenants: ["acme"] });

  test("an expired key is CREDENTIAL_EXPIRED and an expired session SESSION_EXPIRED, after both were accepted", async () => {
    const { key, session, expire } = await expiringWriters(timed.app, "acme", timed.acme, clock);
    for (const token of [key, session]) {
      const accepted = await post({ ...minimal, action: "BeforeExpiry" }, { base: timed.app, authorization: token });
      expect(accepted.status).toBe(201);
    }
    expire();
    for (const [authorization, code] of [
      [key, "CREDENTIAL_EXPIRED"],
      [session, "SESSION_EXPIRED"],
    ] as const) {
      const { status, error, headers } = await postError(
        { ...minimal, action: "AfterExpiry" },
        { base: timed.app, authorization },
      );
      expect([status, error.code]).toEqual([401, code]);
      expect(headers.get("www-authenticate")).toBe("Bearer");
    }
  });
});
