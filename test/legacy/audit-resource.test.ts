import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { type AuditEventSchema, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { expectAll } from "../support/expect-all.js";
import { appFixture } from "../support/fixture.js";
import { whileTableMissing } from "./outage.js";

/** Sequence of each seeded acme event, by name. */
const seq: Record<string, number> = {};

const at = (iso: string) => timestampFromDate(new Date(iso));
const seeds: Record<string, MessageInitShape<typeof AuditEventSchema>> = {
  login: {
    action: "LOGIN",
    actor: { id: "12345", name: "edcAuditJohn" },
    outcome: { status: OutcomeStatus.SUCCESS },
    occurredAt: at("2015-12-01T00:00:00Z"),
    request: { sessionId: "sess-1" },
    target: { id: "acct-1" },
    attributes: { eventInput1: "in1", eventInput2: { a: 1 }, eventOutput1: "out1" },
  },
  create: {
    action: "CREATE",
    actor: { id: "u-2", name: "mary" },
    outcome: { status: OutcomeStatus.FAILURE, code: "403", message: "quota exceeded" },
    occurredAt: at("2015-12-15T12:00:00Z"),
  },
  update: { action: "UPDATE", actor: { name: "edcAuditJohn" }, occurredAt: at("2015-12-30T23:59:59.999Z") },
  delete: { action: "DELETE", occurredAt: at("2015-12-31T00:00:00Z") },
  early: { action: "CREATE", occurredAt: at("2015-11-30T23:59:59.999Z") },
  hostile: { action: "LOGIN", actor: { name: 'a<b>&"c"\u0001\r' }, occurredAt: at("2016-01-05T00:00:00Z") },
};

const given = appFixture({ tenants: ["acme", "globex"] });
beforeAll(async () => {
  const writer = clientFor(AuditService, given.app, "grpc", given.acme.writer);
  for (const [name, event] of Object.entries(seeds)) {
    const { event: stored } = await writer.create({ event: { id: `seed-${name}`, ...event } });
    seq[name] = Number(stored?.sequence);
  }
  const { event: child } = await writer.create({
    event: { action: "CREATE", parentId: "seed-create", occurredAt: at("2015-12-15T12:00:01Z") },
  });
  seq.child = Number(child?.sequence);
  await clientFor(AuditService, given.app, "grpc", given.globex.writer).create({
    event: { action: "LOGIN", occurredAt: at("2015-12-02T00:00:00Z") },
  });
  await clientFor(AdminService, given.app, "connect", given.acme.admin).createUser({
    tenant: "acme",
    username: "ann",
    password: "ann-password",
    roles: [Role.READER],
  });
});

async function get(query = "", headers: Record<string, string> = {}, token: string | null = given.acme.reader) {
  const res = await fetch(`${given.app.url}/audit${query}`, {
    headers: {
      accept: "application/json",
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...headers,
    },
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function audits(query = "", token = given.acme.reader) {
  const res = await get(query, {}, token);
  expect(res.status).toBe(200);
  return (JSON.parse(res.text) as { audit: Record<string, unknown>[] }).audit;
}

const ids = async (query: string) => (await audits(query)).map((a) => a.id);

describe("the document's example", () => {
  test("GET /audit with Accept: application/json: the tenant's audits, newest first, numbers as numbers", async () => {
    const res = await get("", { "content-type": "*/*", accept: "application/json" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const { audit } = JSON.parse(res.text) as { audit: Record<string, unknown>[] };
    expect(audit.map((a) => a.id)).toEqual(
      ["hostile", "delete", "update", "child", "create", "login", "early"].map((n) => seq[n]),
    );
    expect(audit.find((a) => a.id === seq.login)).toEqual({
      id: seq.login,
      accountId: Number(given.acme.numericId),
      occurredOn: Date.parse("2015-12-01T00:00:00Z"),
      userId: 12345,
      username: "edcAuditJohn",
      sessionId: "sess-1",
      entityId: "acct-1",
      eventType: "LOGIN",
      eventResultCode: "TRUE",
      eventResultFailure: null,
      eventInput1: "in1",
      eventInput2: '{"a":1}',
      eventInput3: null,
      eventOutput1: "out1",
      eventOutput2: null,
      eventOutput3: null,
    });
    expect(audit.find((a) => a.id === seq.create)).toMatchObject({
      userId: null,
      username: "mary",
      eventResultCode: "FALSE",
      eventResultFailure: "quota exceeded",
    });
    expect(res.headers.get("x-result-truncated")).toBeNull();
  });

  test("HEAD: the same status and type, no body", async () => {
    const res = await fetch(`${given.app.url}/audit`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${given.acme.reader}` },
    });
    expect([res.status, res.headers.get("content-type"), await res.text()]).toEqual([200, "application/json", ""]);
  });

  test("no Accept header: JSON", async () => {
    const res = await fetch(`${given.app.url}/audit`, { headers: { authorization: `Bearer ${given.acme.reader}` } });
    expect(res.headers.get("content-type")).toBe("application/json");
  });
});

describe("XML", () => {
  const parser = new XMLParser({ parseTagValue: false, isArray: (name) => name === "audit" });

  test.each(["application/xml", "text/xml", "text/html;q=0.9, application/xml"])("Accept: %s", async (accept) => {
    const res = await get("", { accept });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(accept === "text/xml" ? "text/xml" : "application/xml");
    expect(res.text.startsWith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><auditResult><audit>')).toBe(
      true,
    );
    expect(XMLValidator.validate(res.text)).toBe(true);
    const { auditResult } = parser.parse(res.text) as { auditResult: { audit: Record<string, string>[] } };
    const login = auditResult.audit.find((a) => a.id === String(seq.login));
    expect(login).toEqual({
      id: String(seq.login),
      accountId: String(given.acme.numericId),
      occurredOn: String(Date.parse("2015-12-01T00:00:00Z")),
      userId: "12345",
      username: "edcAuditJohn",
      sessionId: "sess-1",
      entityId: "acct-1",
      eventType: "LOGIN",
      eventResultCode: "TRUE",
      eventInput1: "in1",
      eventInput2: '{"a":1}',
      eventOutput1: "out1",
    });
  });

  test("text is escaped, and characters XML cannot carry are replaced", async () => {
    const res = await get(`?userName=${encodeURIComponent('a<b>&"c"\u0001\r')}`, { accept: "application/xml" });
    expect(res.text).toContain('<username>a&lt;b&gt;&amp;"c"\uFFFD&#13;</username>');
    expect(XMLValidator.validate(res.text)).toBe(true);
  });

  test("an empty result", async () => {
    const res = await get("?userName=nobody", { accept: "application/xml" });
    expect(res.text).toBe('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><auditResult></auditResult>');
    expect(JSON.parse((await get("?userName=nobody")).text)).toEqual({ audit: [] });
  });
});

describe("filters", () => {
  test("action", async () => {
    expect(await ids("?action=CREATE")).toEqual([seq.child, seq.create, seq.early]);
    expect(await ids("?action=DELETE")).toEqual([seq.delete]);
  });

  test("resultCode", async () => {
    expect(await ids("?resultCode=TRUE")).toEqual([seq.login]);
    expect(await ids("?resultCode=FALSE")).toEqual([seq.create]);
  });

  test("startDate and stopDate: whole UTC days, both inclusive", async () => {
    expect(await ids("?startDate=12/01/2015&stopDate=12/30/2015")).toEqual(
      ["update", "child", "create", "login"].map((n) => seq[n]),
    );
    expect(await ids("?startDate=12/31/2015")).toEqual([seq.hostile, seq.delete]);
    expect(await ids("?stopDate=11/30/2015")).toEqual([seq.early]);
    expect(await ids("?startDate=1/5/2016&stopDate=1/5/2016")).toEqual([seq.hostile]);
  });

  test("userName, and every filter together", async () => {
    expect(await ids("?userName=edcAuditJohn")).toEqual([seq.update, seq.login]);
    expect(
      await ids("?userName=edcAuditJohn&action=LOGIN&resultCode=TRUE&startDate=12/01/2015&stopDate=12/01/2015"),
    ).toEqual([seq.login]);
  });

  test("empty values count as absent", async () => {
    expect((await ids("?action=&userName=")).length).toBe(7);
  });
});

describe("errors", () => {
  test.each([
    ["startDate=2015-12-01", "startDate"],
    ["startDate=13/01/2015", "startDate"],
    ["startDate=02/30/2015", "startDate"],
    ["stopDate=12/30/15", "stopDate"],
    ["startDate=12/02/2015&stopDate=12/01/2015", "stopDate"],
    ["stopDate=12/31/9999", "stopDate"],
    ["action=create", "action"],
    ["action=LOGOUT", "action"],
    ["resultCode=yes", "resultCode"],
    ["username=edcAuditJohn", "username"],
    ["action=LOGIN&action=CREATE", "action"],
    [`userName=${"u".repeat(1100)}`, "userName"],
  ])("400 for %s, naming %s", async (query, parameter) => {
    const res = await get(`?${query}`);
    expect(res.status).toBe(400);
    const { error } = JSON.parse(res.text) as { error: { code: string; message: string; parameter: string } };
    expect(error.parameter).toBe(parameter);
    expect(error.message).toContain(parameter);
    expect(error.code).toBe("INVALID_FIELD");
  });

  test("errors follow Accept", async () => {
    const res = await get("?startDate=yesterday", { accept: "application/xml" });
    expect([res.status, res.headers.get("content-type")]).toEqual([400, "application/xml"]);
    expect(res.text).toBe(
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><error><code>INVALID_FIELD</code>' +
        "<message>startDate must be a date as mm/dd/yyyy, such as 12/01/2015</message>" +
        "<parameter>startDate</parameter></error>",
    );
  });

  test("401: no credential or a wrong one, checked before the query", async () => {
    for (const [token, code] of [
      [null, "MISSING_CREDENTIAL"],
      ["at_wrong", "INVALID_TOKEN"],
    ] as const) {
      const res = await get("?startDate=bad", {}, token);
      expect([res.status, JSON.parse(res.text).error.code]).toEqual([401, code]);
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
    }
  });

  test("403: a writer, a key without roles, a global credential", async () => {
    for (const [token, code] of [
      [given.acme.writer, "INSUFFICIENT_ROLE"],
      [given.acme.noRole, "NO_ROLE"],
      [given.app.adminToken, "TENANT_MISMATCH"],
    ] as const) {
      const res = await get("", {}, token);
      expect([res.status, JSON.parse(res.text).error.code]).toEqual([403, code]);
    }
  });

  test("405 for other methods, 406 for formats not offered", async () => {
    const post = await fetch(`${given.app.url}/audit`, {
      method: "POST",
      headers: { authorization: `Bearer ${given.acme.reader}` },
    });
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    const html = await get("", { accept: "text/html" });
    expect([html.status, html.headers.get("content-type"), JSON.parse(html.text).error.code]).toEqual([
      406,
      "application/json",
      "NOT_ACCEPTABLE",
    ]);
    expect((await get("", { accept: "application/json;q=0, application/xml;q=0" })).status).toBe(406);
  });

  test("500: the database fails unexpectedly; nothing internal is shown", async () => {
    await whileTableMissing(given.app, "events", async () => {
      const res = await get();
      expect(res.status).toBe(500);
      expect(JSON.parse(res.text).error).toEqual({
        code: "INTERNAL",
        message: expect.stringMatching(/^internal error \(request id [\w-]+\)$/),
      });
    });
  });
});

describe("credentials and tenants", () => {
  test("HTTP Basic as tenant/user, and a bare token", async () => {
    const basic = `Basic ${Buffer.from("acme/ann:ann-password").toString("base64")}`;
    const res = await fetch(`${given.app.url}/audit?action=DELETE`, { headers: { authorization: basic } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { audit: unknown[] }).audit).toHaveLength(1);
    const bare = await fetch(`${given.app.url}/audit?action=DELETE`, { headers: { authorization: given.acme.reader } });
    expect(bare.status).toBe(200);
  });

  test("each tenant sees only its own audits, under its own accountId", async () => {
    const theirs = await audits("", given.globex.reader);
    expect(theirs).toHaveLength(1);
    expect(theirs[0]).toMatchObject({ accountId: Number(given.globex.numericId), eventType: "LOGIN" });
    expect(Number(given.globex.numericId)).not.toBe(Number(given.acme.numericId));
    expectAll(await audits(""), (a) => a.accountId === Number(given.acme.numericId));
  });
});

describe("the cap", () => {
  test(`at most 1000 audits, the newest, with X-Result-Truncated`, async () => {
    const bulk = await provisionTenant(given.app, "bulk");
    const writer = clientFor(AuditService, given.app, "grpc", bulk.writer);
    const base = Date.parse("2020-01-01T00:00:00Z");
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        action: "CREATE",
        occurredAt: timestampFromDate(new Date(base + (from + i) * 1000)),
      }));
    await writer.batchCreate({ events: batch(0, 1000) });
    const full = await get("", {}, bulk.reader);
    expect(JSON.parse(full.text).audit).toHaveLength(1000);
    expect(full.headers.get("x-result-truncated")).toBeNull();
    await writer.batchCreate({ events: batch(1000, 1) });
    const capped = await get("", {}, bulk.reader);
    const { audit } = JSON.parse(capped.text) as { audit: { occurredOn: number }[] };
    expect(audit).toHaveLength(1000);
    expect(capped.headers.get("x-result-truncated")).toBe("true");
    expect(audit[0]?.occurredOn).toBe(base + 1000 * 1000);
    expect(audit[999]?.occurredOn).toBe(base + 1000);
  });
});

test("503: the database is gone", async () => {
  await given.app.app.database.close(0);
  const res = await get();
  expect([res.status, JSON.parse(res.text).error.code, res.headers.get("retry-after")]).toEqual([
    503,
    "DATABASE_UNAVAILABLE",
    "1",
  ]);
});
