import { timestampDate, timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { XMLParser } from "fast-xml-parser";
import postgres from "postgres";
import { beforeAll, describe, expect, test } from "vitest";
import { AdminService, AttributeType, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import type { TestApp } from "../support/app.js";
import { clientFor } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";

const PASSWORD = "correct horse battery";
const PUBLISH = "/uc/resources/universalevent/publish";
const LIST = "/uc/resources/audit/list";

/** The users Universal Controller clients log in as: ops_admin, ops_audit_view, a publisher and one without roles. */
async function createUsers(target: TestApp, tenant: string) {
  const admin = clientFor(AdminService, target, "connect", target.adminToken);
  const users: Array<[string, Role[]]> = [
    ["ops.admin", [Role.ADMIN]],
    ["ops.viewer", [Role.READER]],
    ["ops.publisher", [Role.WRITER]],
    ["ops.nobody", []],
  ];
  for (const [username, roles] of users) await admin.createUser({ tenant, username, password: PASSWORD, roles });
}

function basic(tenant: string, user: string, password = PASSWORD): string {
  return `Basic ${Buffer.from(`${tenant}/${user}:${password}`).toString("base64")}`;
}

interface CallOptions {
  auth?: string | null;
  contentType?: string;
  accept?: string;
  method?: string;
  base?: TestApp;
}

function call(path: string, body: string, options: CallOptions = {}) {
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/json" };
  const auth = options.auth === undefined ? basic("acme", "ops.admin") : options.auth;
  if (auth !== null) headers.authorization = auth;
  if (options.accept) headers.accept = options.accept;
  return fetch(`${(options.base ?? given.app).url}${path}`, {
    method: options.method ?? "POST",
    headers,
    body: options.method === "GET" ? undefined : body,
  });
}

async function text(res: Response, status: number): Promise<string> {
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  const body = await res.text();
  expect(res.status, body).toBe(status);
  return body;
}

const xmlParser = new XMLParser({ isArray: (name) => name === "audit", parseTagValue: false });

interface UcAudit {
  sysId: string;
  auditType?: string;
  created?: string;
  createdBy?: string;
  status?: string;
  source?: string;
  tableKey?: string;
  tableName?: string;
  tableRecordName?: string;
  parentAudit?: string;
  additionalInfo?: string;
  childAudits: UcAudit[] | { audit?: UcAudit[] } | "";
}

/** The audits of an XML listing. */
async function xmlAudits(res: Response): Promise<UcAudit[]> {
  const body = await res.text();
  expect(res.status, body).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/xml");
  expect(body.startsWith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>')).toBe(true);
  const parsed = xmlParser.parse(body) as { audits: { audit?: UcAudit[] } | "" };
  return parsed.audits === "" ? [] : (parsed.audits.audit ?? []);
}

async function jsonAudits(res: Response): Promise<UcAudit[]> {
  const body = await res.text();
  expect(res.status, body).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  return JSON.parse(body) as UcAudit[];
}

const given = appFixture({ tenants: ["acme", "globex"] });
beforeAll(async () => {
  await createUsers(given.app, "acme");
  await createUsers(given.app, "globex");
});

describe("POST /uc/resources/audit/list", () => {
  const KEY = "51b13fca5b8541418cd17cdd97c95b87";
  const hoursAgo = (h: number) => timestampFromDate(new Date(Date.now() - h * 3600e3));
  const admin = { type: "ops_user", id: KEY, name: "Administrator" };
  const base = { source: "Web Service", actor: { name: "ops.system" }, target: admin };
  const ids = {
    recent: "uc-recent",
    upper: "uc-upper",
    old: "uc-old",
    login: "uc-login",
    child: "uc-child",
    otherName: "uc-other-name",
    failed: "uc-failed",
  };

  beforeAll(async () => {
    const writer = clientFor(AuditService, given.app, "grpc", given.acme.writer);
    const success = { status: OutcomeStatus.SUCCESS, message: "created ops_user Administrator" };
    await writer.batchCreate({
      events: [
        { ...base, id: ids.old, action: "create", occurredAt: hoursAgo(20 * 24), outcome: success },
        {
          ...base,
          id: ids.recent,
          action: "create",
          occurredAt: hoursAgo(24),
          outcome: success,
          attributes: { k: "v" },
        },
        { ...base, id: ids.upper, action: "CREATE", occurredAt: hoursAgo(2), outcome: success },
        { ...base, id: ids.login, action: "User Login", occurredAt: hoursAgo(3) },
        { ...base, id: ids.child, action: "update", parentId: ids.recent, occurredAt: hoursAgo(23) },
        { ...base, id: ids.otherName, action: "create", occurredAt: hoursAgo(4), target: { ...admin, name: "Other" } },
        {
          ...base,
          id: ids.failed,
          action: "create",
          occurredAt: hoursAgo(5),
          outcome: { status: OutcomeStatus.FAILURE },
        },
      ],
    });
    await clientFor(AuditService, given.app, "grpc", given.globex.writer).create({
      event: { ...base, id: "globex-only", action: "create", occurredAt: hoursAgo(1) },
    });
  });

  // The document's XML request, verbatim.
  const documentXml = `<audit-filter>
    <auditType>create</auditType>
    <updatedTimeType>offset</updatedTimeType>
    <updatedTime>-10d</updatedTime>
    <status>*</status>
    <createdBy>ops.system</createdBy>
    <tableRecordName>Administrator</tableRecordName>
    <tableName>ops_user</tableName>
    <source>Web Service</source>
    <tableKey>51b13fca5b8541418cd17cdd97c95b87</tableKey>
    <includeChildAudits>false</includeChildAudits>
</audit-filter>`;

  // The document's JSON request, verbatim: auditType 9 is "User Login".
  const documentJson = `{
    "auditType" : "9",
    "updatedTimeType" : "offset",
    "updatedTime" : "-10d",
    "status" : "*",
    "createdBy" : "ops.system",
    "tableRecordName" : "Administrator",
    "tableName" : "ops_user",
    "source" : "Web Service",
    "tableKey" : "51b13fca5b8541418cd17cdd97c95b87",
    "includeChildAudits" : "false"
}`;

  test("the document's XML filter lists the matching audits, newest first, as XML", async () => {
    const audits = await xmlAudits(await call(LIST, documentXml, { contentType: "application/xml" }));
    // "create" matches CREATE too; the 20-day-old one, the child, the other record name and other types are out.
    expect(audits.map((a) => a.sysId)).toEqual([ids.upper, ids.failed, ids.recent]);
    const recent = audits[2];
    expect(recent).toMatchObject({
      auditType: "create",
      createdBy: "ops.system",
      source: "Web Service",
      status: "Success",
      tableKey: KEY,
      tableName: "ops_user",
      tableRecordName: "Administrator",
      additionalInfo: '{"k":"v"}',
      childAudits: "",
    });
    expect(recent?.created).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(audits[1]?.status).toBe("Failure");
  });

  test("the document's JSON filter (auditType 9 = User Login) answers JSON when asked", async () => {
    const audits = await jsonAudits(await call(LIST, documentJson, { accept: "application/json" }));
    expect(audits.map((a) => a.sysId)).toEqual([ids.login]);
    expect(audits[0]).toMatchObject({
      auditType: "User Login",
      childAudits: [],
      createdBy: "ops.system",
      parentAudit: null,
      status: null,
      tableRecordName: "Administrator",
    });
    // The same filter as XML when the caller prefers it, and by default.
    const xml = await xmlAudits(await call(LIST, documentJson, { accept: "application/json;q=0.5, application/xml" }));
    expect(xml.map((a) => a.sysId)).toEqual([ids.login]);
    expect((await xmlAudits(await call(LIST, documentJson))).map((a) => a.sysId)).toEqual([ids.login]);
  });

  test("an audit read back has every mapped field of the stored event", async () => {
    const [audit] = await jsonAudits(
      await call(
        LIST,
        JSON.stringify({ tableKey: KEY, tableRecordName: "Administrator", auditType: "create", updatedTime: "-30h" }),
        {
          accept: "application/json",
        },
      ),
    ).then((all) => all.filter((a) => a.sysId === ids.recent));
    const { events } = await clientFor(AuditService, given.app, "grpc", given.acme.reader).list({
      actions: ["create"],
      pageSize: 100,
    });
    const event = events.find((e) => e.id === ids.recent);
    expect(event).toBeDefined();
    const occurred = event?.occurredAt ? timestampDate(event.occurredAt).toISOString() : "";
    expect(audit).toMatchObject({
      sysId: event?.id,
      auditType: event?.action,
      created: `${occurred.slice(0, 19).replace("T", " ")} +0000`,
      createdBy: event?.actor?.name,
      source: event?.source,
      tableKey: event?.target?.id,
      tableName: event?.target?.type,
      tableRecordName: event?.target?.name,
      additionalInfo: JSON.stringify(event?.attributes),
    });
  });

  test("includeChildAudits nests each audit's children, in XML and JSON", async () => {
    const filter = (include: string) =>
      `<audit-filter><auditType>create</auditType><tableRecordName>Administrator</tableRecordName><updatedTime>-30h</updatedTime><includeChildAudits>${include}</includeChildAudits></audit-filter>`;
    const xml = await xmlAudits(await call(LIST, filter("true"), { contentType: "text/xml" }));
    const recent = xml.find((a) => a.sysId === ids.recent);
    expect(recent?.childAudits).toMatchObject({
      audit: [{ sysId: ids.child, auditType: "update", parentAudit: ids.recent }],
    });
    const json = await jsonAudits(
      await call(LIST, JSON.stringify({ auditType: "create", updatedTime: "-30h", includeChildAudits: "1" }), {
        accept: "application/json",
      }),
    );
    expect(json.find((a) => a.sysId === ids.recent)?.childAudits).toMatchObject([
      { sysId: ids.child, childAudits: [] },
    ]);
    // Without the flag, children appear neither nested nor on their own.
    const flat = await jsonAudits(
      await call(LIST, JSON.stringify({ updatedTime: "-30h" }), { accept: "application/json" }),
    );
    expect(flat.map((a) => a.sysId)).not.toContain(ids.child);
    expect(flat.find((a) => a.sysId === ids.recent)?.childAudits).toEqual([]);
  });

  test.each<[string, Record<string, string>, string[]]>([
    ["status success", { status: "Success", auditType: "create" }, [ids.upper, ids.recent, ids.old]],
    ["status failure", { status: "FAILURE" }, [ids.failed]],
    ["auditType by number", { auditType: "1", tableRecordName: "Other" }, [ids.otherName]],
    ["older than an offset", { updatedTimeType: "Older Than", updatedTime: "-10d" }, [ids.old]],
    [
      "since an absolute UTC time",
      {
        updatedTimeType: "since",
        updatedTime: new Date(Date.now() - 150 * 60e3).toISOString().slice(0, 19).replace("T", " "),
      },
      [ids.upper],
    ],
    ["an offset in minutes", { updatedTimeType: "offset", updatedTime: "-150mn" }, [ids.upper]],
    ["createdBy of nobody", { createdBy: "someone.else" }, []],
  ])("filters by %s", async (_name, filter, expected) => {
    const audits = await jsonAudits(await call(LIST, JSON.stringify(filter), { accept: "application/json" }));
    expect(audits.map((a) => a.sysId)).toEqual(expected);
  });

  test.each<[string, string, string]>([
    [
      "an unknown updatedTimeType",
      '{"updatedTimeType": "yesterday", "updatedTime": "-1d"}',
      "Invalid updatedTimeType.",
    ],
    ["an offset with a bad unit", '{"updatedTimeType": "offset", "updatedTime": "-10x"}', "Invalid updatedTime."],
    [
      "an absolute time for offset",
      '{"updatedTimeType": "offset", "updatedTime": "2024-01-01 00:00:00"}',
      "Invalid updatedTime.",
    ],
    [
      "a bad absolute time",
      '{"updatedTimeType": "since", "updatedTime": "2024-13-01 00:00:00"}',
      "Invalid updatedTime.",
    ],
    ["updatedTimeType without updatedTime", '{"updatedTimeType": "since"}', "Invalid updatedTime."],
    ["an unknown status", '{"status": "maybe"}', "Invalid status."],
    ["an unknown audit type number", '{"auditType": "99"}', "Invalid auditType."],
    ["a * inside auditType", '{"auditType": "cre*ate"}', "Invalid auditType."],
    ["a bad includeChildAudits", '{"includeChildAudits": "sometimes"}', "Invalid includeChildAudits."],
    ["an object for createdBy", '{"createdBy": {"name": "x"}}', "Invalid createdBy."],
    ["an overlong createdBy", JSON.stringify({ createdBy: "x".repeat(2000) }), "Invalid createdBy."],
    ["an unknown field", '{"colour": "red"}', 'Unknown field "colour".'],
    ["a JSON array", "[]", "Invalid request."],
    ["malformed JSON", '{"status": ', "Invalid request. The body is not valid JSON"],
  ])("400 naming the field: %s", async (_name, body, message) => {
    expect(await text(await call(LIST, body), 400)).toContain(message);
  });

  test("400 for bad XML: malformed, a DOCTYPE or entity, another root, a nested value", async () => {
    const xml = (body: string) => call(LIST, body, { contentType: "application/xml" });
    expect(await text(await xml("<audit-filter><status>*</audit-filter>"), 400)).toContain("not acceptable XML");
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><audit-filter><source>&lol2;</source></audit-filter>`;
    expect(await text(await xml(laughs), 400)).toContain("DOCTYPE and ENTITY declarations are not accepted");
    expect(await text(await xml("<audit-filter><source>&ext;</source></audit-filter>"), 400)).toContain(
      "undefined entity",
    );
    expect(await text(await xml("<filter><status>*</status></filter>"), 400)).toContain("<audit-filter>");
    expect(await text(await xml("<audit-filter><source><a>1</a></source></audit-filter>"), 400)).toContain(
      "Invalid source.",
    );
    // Predefined entities and character references are ordinary text.
    const decoded = await xmlAudits(
      await xml(
        "<audit-filter><source>Web&#32;Service</source><createdBy>ops&#x2E;system</createdBy><auditType>User Login</auditType></audit-filter>",
      ),
    );
    expect(decoded.map((a) => a.sysId)).toEqual([ids.login]);
  });

  test("415 for another content type, 406 for an Accept it cannot meet, 413 when too large, 405 for GET", async () => {
    expect(
      await text(await call(LIST, "status=*", { contentType: "application/x-www-form-urlencoded" }), 415),
    ).toContain("application/xml or application/json");
    expect((await text(await call(LIST, "{}", { accept: "text/html" }), 406)).startsWith("Not Acceptable. ")).toBe(
      true,
    );
    const big = JSON.stringify({ source: "x".repeat(4.5 * 1024 * 1024) });
    expect(await text(await call(LIST, big), 413)).toBe("Request body too large. The limit is 4194304 bytes.");
    const get = await call(LIST, "", { method: "GET" });
    expect(await text(get, 405)).toBe("Method Not Allowed. Use POST.");
    expect(get.headers.get("allow")).toBe("POST");
  });

  test("ops_audit_view (reader) and ops_admin (admin) may list; others get 401 or the document's 403", async () => {
    const filter = '{"auditType": "User Login"}';
    for (const user of ["ops.viewer", "ops.admin"]) {
      const audits = await xmlAudits(await call(LIST, filter, { auth: basic("acme", user) }));
      expect(audits.map((a) => a.sysId)).toEqual([ids.login]);
    }
    for (const user of ["ops.publisher", "ops.nobody"]) {
      expect(await text(await call(LIST, filter, { auth: basic("acme", user) }), 403)).toBe(
        "Operation prohibited due to security constraints.",
      );
    }
    const missing = await call(LIST, filter, { auth: null });
    expect(await text(missing, 401)).toBe(
      "Authentication required. Use HTTP Basic with the user name tenant/username.",
    );
    expect(missing.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
    expect(await text(await call(LIST, filter, { auth: basic("acme", "ops.viewer", "wrong password") }), 401)).toBe(
      "Invalid credentials.",
    );
    // The tenant is part of the user name; a bare user name or another scheme is refused.
    const bare = `Basic ${Buffer.from(`ops.viewer:${PASSWORD}`).toString("base64")}`;
    expect(await text(await call(LIST, filter, { auth: bare }), 401)).toContain("tenant/username");
    expect(await text(await call(LIST, filter, { auth: `Bearer ${given.acme.reader}` }), 401)).toContain("HTTP Basic");
  });

  test("each tenant's users see only its own audits", async () => {
    const filter = JSON.stringify({ auditType: "create", updatedTime: "-10d" });
    const globexAudits = await jsonAudits(
      await call(LIST, filter, { auth: basic("globex", "ops.viewer"), accept: "application/json" }),
    );
    expect(globexAudits.map((a) => a.sysId)).toEqual(["globex-only"]);
    const acmeAudits = await jsonAudits(
      await call(LIST, filter, { auth: basic("acme", "ops.viewer"), accept: "application/json" }),
    );
    expect(acmeAudits.map((a) => a.sysId)).not.toContain("globex-only");
  });
});

describe("POST /uc/resources/universalevent/publish", () => {
  beforeAll(async () => {
    for (const [tokens, target] of [[given.acme, given.app]] as const) {
      const admin = clientFor(AdminService, target, "connect", tokens.admin);
      await admin.createEventTemplate({
        template: {
          name: "deploy",
          attributes: [
            { name: "service", type: AttributeType.STRING, required: true },
            { name: "replicas", type: AttributeType.INTEGER },
            { name: "ratio", type: AttributeType.FLOAT },
            { name: "canary", type: AttributeType.BOOLEAN },
          ],
        },
      });
      await admin.createEventTemplate({ template: { name: "heartbeat", defaultTtlMinutes: 30n } });
    }
  });

  const publisher = basic("acme", "ops.publisher");
  const publish = (body: string, options: CallOptions = {}) => call(PUBLISH, body, { auth: publisher, ...options });

  async function published(action: string) {
    const { events } = await clientFor(AuditService, given.app, "grpc", given.acme.reader).list({
      actions: [action],
      pageSize: 100,
    });
    return events;
  }

  test("the JSON form publishes; the event reads back over gRPC with typed attributes, TTL and publisher", async () => {
    const body = JSON.stringify({
      name: "deploy",
      ttl: 60,
      attributes: [
        { name: "service", value: "api" },
        { name: "replicas", value: "3" },
        { name: "ratio", value: "0.25" },
      ],
    });
    expect(await text(await publish(body), 200)).toBe('Universal Event "deploy" published.');
    const [event] = await published("deploy");
    expect(event?.category).toBe("universal_event");
    expect(event?.attributes).toEqual({ service: "api", replicas: 3, ratio: 0.25 });
    expect(event?.actor).toMatchObject({ type: "user", name: "ops.publisher" });
    const received = event?.receivedAt ? timestampMs(event.receivedAt) : 0;
    expect(event?.expiresAt && timestampMs(event.expiresAt) - received).toBe(60 * 60_000);
  });

  test("the XML form and the object-map attributes publish the same way", async () => {
    const xml = `<universalEvent><name>heartbeat</name><ttl></ttl><attributes></attributes></universalEvent>`;
    expect(await text(await publish(xml, { contentType: "application/xml" }), 200)).toBe(
      'Universal Event "heartbeat" published.',
    );
    const [beat] = await published("heartbeat");
    // No TTL given: the template's default of 30 minutes applies.
    expect(beat?.expiresAt && beat.receivedAt && timestampMs(beat.expiresAt) - timestampMs(beat.receivedAt)).toBe(
      30 * 60_000,
    );

    const withAttributes = `<universalEvent>
      <name>deploy</name>
      <ttl>5</ttl>
      <attributes>
        <attribute name="service">web &amp; api</attribute>
        <attribute name="canary">TRUE</attribute>
      </attributes>
    </universalEvent>`;
    expect(await text(await publish(withAttributes, { contentType: "text/xml" }), 200)).toBe(
      'Universal Event "deploy" published.',
    );
    const map = JSON.stringify({ name: "deploy", attributes: { service: "map", replicas: 7 } });
    expect(await text(await publish(map), 200)).toBe('Universal Event "deploy" published.');
    const events = await published("deploy");
    expect(events.map((e) => e.attributes)).toEqual(
      expect.arrayContaining([
        { service: "web & api", canary: true },
        { service: "map", replicas: 7 },
      ]),
    );
  });

  test("publishing the same event twice stores two events: the API carries no id to replay with", async () => {
    const body = JSON.stringify({ name: "heartbeat" });
    const before = (await published("heartbeat")).length;
    await text(await publish(body), 200);
    await text(await publish(body), 200);
    expect((await published("heartbeat")).length).toBe(before + 2);
  });

  test.each<[string, string, number, string]>([
    ["an unknown template", '{"name": "nope"}', 404, 'Universal Event Template "nope" not found.'],
    [
      "a negative ttl",
      '{"name": "deploy", "ttl": -1, "attributes": {"service": "a"}}',
      400,
      "Invalid Time To Live. Value must be non-negative or empty.",
    ],
    [
      "a ttl that is not a number",
      '{"name": "deploy", "ttl": "soon"}',
      400,
      "Invalid Time To Live. Value must be non-negative or empty.",
    ],
    [
      "attributes for a template without any",
      '{"name": "heartbeat", "attributes": {"a": "1"}}',
      400,
      'Universal Event attributes unknown for Universal Event Template "heartbeat".',
    ],
    [
      "an attribute without a name",
      '{"name": "deploy", "attributes": [{"value": "1"}]}',
      400,
      "Universal Event attribute name required.",
    ],
    [
      "a duplicated attribute",
      '{"name": "deploy", "attributes": [{"name": "service", "value": "a"}, {"name": "service", "value": "b"}]}',
      400,
      'Universal Event attribute "service" duplicated.',
    ],
    [
      "an unknown attribute",
      '{"name": "deploy", "attributes": {"colour": "red"}}',
      400,
      'Universal Event attribute "colour" unknown for Universal Event Template "deploy".',
    ],
    [
      "a bad integer",
      '{"name": "deploy", "attributes": {"service": "a", "replicas": "three"}}',
      400,
      'Universal Event attribute value "three" for attribute "replicas" is not a valid integer.',
    ],
    [
      "a bad float",
      '{"name": "deploy", "attributes": {"service": "a", "ratio": "half"}}',
      400,
      'Universal Event attribute value "half" for attribute "ratio" is not a valid float.',
    ],
    ["no name", '{"ttl": 5}', 400, "Universal Event name required."],
    ["a name that is not a string", '{"name": 5}', 400, "Invalid name. Value must be a string."],
    ["an unknown field", '{"name": "deploy", "id": "x"}', 400, 'Unknown field "id".'],
    [
      "an attribute value that is an object",
      '{"name": "deploy", "attributes": {"service": {"a": 1}}}',
      400,
      "Invalid attributes.service. Value must be a string.",
    ],
    ["malformed JSON", '{"name": "deploy"', 400, "Invalid request. The body is not valid JSON: "],
  ])("%s: the document's message", async (_name, body, status, message) => {
    const before = (await published("deploy")).length;
    expect(await text(await publish(body), status)).toContain(message);
    expect((await published("deploy")).length).toBe(before);
  });

  test("XML that is malformed or declares entities is refused before parsing; nothing stored", async () => {
    const xml = (body: string) => publish(body, { contentType: "application/xml" });
    const before = (await published("heartbeat")).length;
    const external = `<!DOCTYPE universalEvent [<!ENTITY x SYSTEM "file:///etc/passwd">]><universalEvent><name>&x;</name></universalEvent>`;
    expect(await text(await xml(external), 400)).toContain("DOCTYPE and ENTITY declarations are not accepted");
    expect(await text(await xml("<universalEvent><name>heartbeat</universalEvent>"), 400)).toContain(
      "Invalid request. The body is not acceptable XML: ",
    );
    expect(await text(await xml("<event><name>heartbeat</name></event>"), 400)).toContain("<universalEvent>");
    expect((await published("heartbeat")).length).toBe(before);
  });

  test("401 without valid Basic credentials, the document's 403 without the writer role, 415, 405", async () => {
    const body = '{"name": "heartbeat"}';
    const missing = await publish(body, { auth: null });
    expect(await text(missing, 401)).toBe(
      "Authentication required. Use HTTP Basic with the user name tenant/username.",
    );
    expect(missing.headers.get("www-authenticate")).toMatch(/^Basic /);
    expect(await text(await publish(body, { auth: basic("acme", "ops.publisher", "nope") }), 401)).toBe(
      "Invalid credentials.",
    );
    for (const user of ["ops.viewer", "ops.nobody"]) {
      expect(await text(await publish(body, { auth: basic("acme", user) }), 403)).toBe(
        "Operation prohibited due to security constraints.",
      );
    }
    expect(await text(await publish(body, { contentType: "text/plain" }), 415)).toBe(
      "Unsupported Media Type text/plain. Use application/xml or application/json.",
    );
    expect(await text(await publish("", { method: "GET" }), 405)).toBe("Method Not Allowed. Use POST.");
  });

  test("another tenant's users publish only against their own templates", async () => {
    const res = await publish('{"name": "deploy", "attributes": {"service": "x"}}', {
      auth: basic("globex", "ops.publisher"),
    });
    expect(await text(res, 404)).toBe('Universal Event Template "deploy" not found.');
  });
});

describe("when the database fails in an unexpected way", () => {
  const broken = appFixture({ tenants: ["acme"] });
  beforeAll(async () => {
    await createUsers(broken.app, "acme");
    // Made before the table breaks: creating it also stores its self-audit record in events.
    await clientFor(AdminService, broken.app, "connect", broken.acme.admin).createEventTemplate({
      template: { name: "heartbeat" },
    });
    // Break the events table under the running service, so reading or writing an event fails unexpectedly.
    const sql = postgres(broken.app.databaseUrl, { max: 1, onnotice: () => {} });
    await sql`alter table events rename column source to source_renamed`;
    await sql.end();
  });

  test("the list answers the document's 500 and logs the failure", async () => {
    const list = await call(LIST, "{}", { base: broken.app, auth: basic("acme", "ops.viewer") });
    expect(await text(list, 500)).toBe("Unexpected request failure. See log(s) for more details.");
    expect(broken.app.logs.some((line) => line.includes("universal controller request failed"))).toBe(true);
  });

  test("publish answers the document's 500", async () => {
    const publish = await call(PUBLISH, '{"name": "heartbeat"}', {
      base: broken.app,
      auth: basic("acme", "ops.publisher"),
    });
    expect(await text(publish, 500)).toBe("Unexpected request failure. See log(s) for more details.");
  });
});
