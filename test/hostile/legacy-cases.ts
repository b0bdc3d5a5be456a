import fc from "fast-check";
import type { HostileCase, Outcome, Target } from "./harness.js";
import { hostileCase } from "./harness.js";
import type { RawHttp, RawRequest } from "./http-cases.js";
import { MAX_BODY_BYTES } from "./rpc-cases.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A body's value at one key replaced by raw JSON text (nesting or numbers JSON.stringify cannot write). */
function withRaw(base: Record<string, Json>, key: string, rawJson: string): Buffer {
  const marker = "\u0000raw\u0000";
  return Buffer.from(JSON.stringify({ ...base, [key]: marker }).replace(JSON.stringify(marker), rawJson));
}

const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
const wrongTypes: [string, string][] = [
  ["a number", "5"],
  ["true", "true"],
  ["an object", '{"a":1}'],
  ["an array", '["a"]'],
  ["1e400", "1e400"],
  ["arrays nested 50,000 deep", deep(50_000)],
];

/** Invalid UTF-8 spliced into a body, at a byte position. */
const badUtf8 = fc
  .record({ at: fc.nat(), bad: fc.constantFrom([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80]) })
  .map(({ at, bad }) => ({ at, bad: Buffer.from(bad) }));

function expect4xx(statuses: number[], bodyCheck?: (o: Outcome) => string | undefined) {
  return { statuses, check: bodyCheck };
}

/**
 * PlanoAuth `POST /api/v1/audit_events_fmp/create`: every parameter of the wrong type, missing, malformed or too
 * big; broken encodings (truncated JSON, not base64, invalid UTF-8); wrong media types; bodies over the limit; bad
 * tokens. Each is a 400 (or 401 for a token that is not one) with a PlanoAuth status other than success.
 */
export function planoAuthCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const path = "/api/v1/audit_events_fmp/create";
  const base: Record<string, Json> = {
    token: target.acme.writer,
    unique_id: "plano-hostile",
    script_name: "s.fmp",
    host_name: "host",
    file_name: "file",
    start_time: "2024-01-01 00:00:00",
    notes: ["n"],
    application: "planoauth",
  };
  const baseText = Buffer.from(JSON.stringify(base));
  const notSuccess = (o: Outcome) =>
    o.detail.includes('"action-successful"') ? "answered action-successful" : undefined;
  const post = (
    label: string,
    body: Uint8Array | Uint8Array[],
    statuses = [400],
    headers: Record<string, string> = { "content-type": "application/json" },
  ) =>
    hostileCase({
      channel: "legacy",
      label: `PlanoAuth: ${label}`,
      expect: expect4xx(statuses, notSuccess),
      send: (signal) => client.send({ method: "POST", path, headers, body } satisfies RawRequest, signal),
    });
  const params = [
    "unique_id",
    "script_name",
    "host_name",
    "file_name",
    "start_time",
    "stop_time",
    "updated_in",
    "application",
    "application_view",
    "session_view",
    "notes",
  ];
  return fc.oneof(
    fc
      .record({ param: fc.constantFrom(...params), wrong: fc.constantFrom(...wrongTypes) })
      // notes is the one array parameter.
      .filter(({ param, wrong }) => !(param === "notes" && wrong[0] === "an array"))
      .map(({ param, wrong }) => post(`${param} = ${wrong[0]}`, withRaw(base, param, wrong[1]))),
    fc
      .constantFrom("unique_id", "script_name", "host_name", "file_name", "start_time")
      .chain((param) => fc.constantFrom(`${param} missing`, `${param} empty`).map((how) => ({ param, how })))
      .map(({ param, how }) => {
        const body = { ...base };
        if (how.endsWith("missing")) delete body[param];
        else body[param] = "";
        return post(how, Buffer.from(JSON.stringify(body)));
      }),
    fc
      .record({
        param: fc.constantFrom("start_time", "stop_time"),
        value: fc.constantFrom(
          "2024-13-01 00:00:00",
          "yesterday",
          "2024-02-30 00:00:00",
          "99999-01-01T00:00:00Z",
          "2024-01-01T25:00:00Z",
          "1969-12-31 23:59:59",
          "2999-01-01 00:00:00",
          "2024-01-01 00:00:00 extra",
        ),
      })
      .map(({ param, value }) => post(`${param} ${value}`, Buffer.from(JSON.stringify({ ...base, [param]: value })))),
    fc
      .constantFrom("bogus", "PLANOAUTH", "planoauth ", "")
      .filter((a) => a !== "")
      .map((application) =>
        post(`application ${JSON.stringify(application)}`, Buffer.from(JSON.stringify({ ...base, application }))),
      ),
    fc
      .constantFrom("has space", "x".repeat(200), "ü", "a/b")
      .map((id) =>
        post(`unique_id ${JSON.stringify(id.slice(0, 20))}`, Buffer.from(JSON.stringify({ ...base, unique_id: id }))),
      ),
    fc.constant(
      post(
        "notes of 10,000 strings (attributes past 64 KiB)",
        Buffer.from(JSON.stringify({ ...base, notes: Array.from({ length: 10_000 }, (_, i) => `note number ${i}`) })),
      ),
    ),
    fc
      .constantFrom("[1]", "[null]", `[${deep(1000)}]`, '"x"')
      .map((notes) => post(`notes ${notes.slice(0, 20)}`, withRaw(base, "notes", notes))),
    fc.constant(post("an unknown parameter", Buffer.from(JSON.stringify({ ...base, bogus: "x" })))),
    fc
      .constantFrom<[string, Json, number]>(
        ["token missing", null, 400],
        ["token a number", 5, 400],
        ["token an object", { t: 1 }, 400],
        ["token garbage", "at_not-a-token", 401],
        ["token of 5000 characters", "x".repeat(5000), 401],
        ["token with a control character", "at_\u0001x", 401],
        ["a reader's token", target.acme.reader, 401],
        ["the superadmin token", target.app.adminToken, 401],
      )
      .map(([label, token, status]) => post(label, Buffer.from(JSON.stringify({ ...base, token })), [status])),
    fc
      .integer({ min: 1, max: baseText.length - 1 })
      .map((n) => post(`JSON cut to ${n} bytes`, baseText.subarray(0, n))),
    badUtf8.map(({ at, bad }) => {
      const i = at % (baseText.length + 1);
      return post(`invalid UTF-8 at byte ${i}`, Buffer.concat([baseText.subarray(0, i), bad, baseText.subarray(i)]));
    }),
    fc
      .constantFrom(
        "",
        "{}",
        "[]",
        "null",
        "!!!not base64!!!",
        Buffer.from("[1]").toString("base64"),
        Buffer.from("not json").toString("base64"),
        '"e30="',
      )
      .map((text) => post(`body ${JSON.stringify(text)}`, Buffer.from(text))),
    fc
      .constantFrom(
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
      )
      .map((type) => post(`sent as ${JSON.stringify(type)}`, baseText, [400], { "content-type": type })),
    fc.constant(
      post(
        "an XML body",
        Buffer.from('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'),
        [400],
        { "content-type": "application/xml" },
      ),
    ),
    fc.boolean().map((chunked) => {
      const big = Buffer.concat([Buffer.from('{"token":"'), Buffer.alloc(MAX_BODY_BYTES, 0x61), Buffer.from('"}')]);
      return post(
        `${big.length} bytes${chunked ? " chunked" : ""}`,
        chunked ? [big.subarray(0, 1 << 20), big.subarray(1 << 20)] : big,
      );
    }),
  );
}

/**
 * Axonize `POST /odata/Audits`: mandatory properties missing or mistyped, unknown enumerations, malformed
 * key/value lists and times, oversized values, broken encodings, wrong media types and bad Authorization headers.
 */
export function axonizeCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const path = "/odata/Audits";
  const base: Record<string, Json> = {
    entityName: "device",
    entityId: "1",
    action: "Create",
    category: "Devices",
    userId: "u1",
    requestDateTime: "2024-01-01T00:00:00Z",
    additionalInfo: [{ key: "k", value: "v" }],
    result: "OK",
    requestDurationMs: 5,
  };
  const baseText = Buffer.from(JSON.stringify(base));
  const post = (
    label: string,
    body: Uint8Array | Uint8Array[],
    statuses = [400],
    headers: Record<string, string> = {},
  ) =>
    hostileCase({
      channel: "legacy",
      label: `Axonize: ${label}`,
      expect: { statuses },
      send: (signal) =>
        client.send(
          {
            method: "POST",
            path,
            headers: { "content-type": "application/json", authorization: target.acme.writer, ...headers },
            body,
          },
          signal,
        ),
    });
  const body = (patch: Record<string, Json>) => Buffer.from(JSON.stringify({ ...base, ...patch }));
  return fc.oneof(
    fc
      .record({
        property: fc.constantFrom(...Object.keys(base), "roles", "sourceType", "responseDateTime", "appId"),
        wrong: fc.constantFrom(...wrongTypes),
      })
      .filter(({ property, wrong }) => !(property === "requestDurationMs" && wrong[0] === "a number"))
      .filter(({ property, wrong }) => !(property === "result" && wrong[0] === "a number"))
      .filter(({ property, wrong }) => !(["roles", "additionalInfo"].includes(property) && wrong[0] === "an array"))
      .map(({ property, wrong }) => post(`${property} = ${wrong[0]}`, withRaw(base, property, wrong[1]))),
    fc.constantFrom("entityName", "entityId", "action", "category").map((p) => {
      const b = { ...base };
      delete b[p];
      return post(`${p} missing`, Buffer.from(JSON.stringify(b)));
    }),
    fc
      .constantFrom("Device", "devices ", "Bogus", "")
      .map((category) => post(`category ${JSON.stringify(category)}`, body({ category }))),
    fc.constantFrom("Bogus", "Portal!").map((sourceType) => post(`sourceType ${sourceType}`, body({ sourceType }))),
    fc
      .constantFrom<Json>(
        { key: "k" },
        [1],
        [{ key: 1, value: "v" }],
        [{ k: "x", value: "v" }],
        [{ key: "k", value: { a: 1 } }],
        "x",
      )
      .map((additionalInfo) => post(`additionalInfo ${JSON.stringify(additionalInfo)}`, body({ additionalInfo }))),
    fc.constant(
      post(
        "additionalInfo of 10,000 pairs (attributes past 64 KiB)",
        body({ additionalInfo: Array.from({ length: 10_000 }, (_, i) => ({ key: `key-${i}`, value: `value-${i}` })) }),
      ),
    ),
    fc
      .constantFrom<Json>(-1, "abc", "1e400", "-0.5", "NaN")
      .map((requestDurationMs) => post(`requestDurationMs ${requestDurationMs}`, body({ requestDurationMs }))),
    fc
      .constantFrom("2024-13-01T00:00:00Z", "yesterday", "10000-01-01T00:00:00Z", "1969-12-31T23:59:59Z")
      .map((t) => post(`requestDateTime ${t}`, body({ requestDateTime: t }))),
    fc.constant(post("responseDateTime before requestDateTime", body({ responseDateTime: "2023-01-01T00:00:00Z" }))),
    fc
      .constantFrom("entityName", "action", "userId")
      .map((p) => post(`${p} of 5000 characters`, body({ [p]: "x".repeat(5000) }))),
    fc.constantFrom("has space", "ü").map((id) => post(`id ${id}`, body({ id }))),
    fc.constant(post("appId differs from its header", body({ appId: "a" }), [400], { appid: "b" })),
    fc
      .integer({ min: 1, max: baseText.length - 1 })
      .map((n) => post(`JSON cut to ${n} bytes`, baseText.subarray(0, n))),
    badUtf8.map(({ at, bad }) => {
      const i = at % (baseText.length + 1);
      return post(`invalid UTF-8 at byte ${i}`, Buffer.concat([baseText.subarray(0, i), bad, baseText.subarray(i)]));
    }),
    fc
      .constantFrom("", "[]", "null", "1", '"x"')
      .map((text) => post(`body ${JSON.stringify(text)}`, Buffer.from(text))),
    fc
      .constantFrom("text/plain", "application/xml", "")
      .map((type) => post(`sent as ${JSON.stringify(type)}`, baseText, [400], { "content-type": type })),
    fc.boolean().map((chunked) => {
      const big = Buffer.concat([
        Buffer.from('{"entityName":"'),
        Buffer.alloc(MAX_BODY_BYTES, 0x61),
        Buffer.from('"}'),
      ]);
      return post(
        `${big.length} bytes${chunked ? " chunked" : ""}`,
        chunked ? [big.subarray(0, 1 << 20), big.subarray(1 << 20)] : big,
      );
    }),
    fc
      .constantFrom(
        "Bearer",
        "Bearer ",
        "Basic !!!",
        `Basic ${Buffer.from("nocolon").toString("base64")}`,
        "Bearer a b",
        "Negotiate x",
        "x".repeat(9000),
        "Bearer at_\u00ff",
      )
      .map((authorization) =>
        post(`Authorization ${JSON.stringify(authorization.slice(0, 24))}`, baseText, [401], { authorization }),
      ),
    fc.constant(post("a reader's key", baseText, [403], { authorization: target.acme.reader })),
  );
}

/** `GET /audit`: malformed dates and values, unknown and repeated parameters, unacceptable Accept, wrong methods. */
export function auditResourceCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const get = (label: string, query: string, statuses = [400], headers: Record<string, string> = {}, method = "GET") =>
    hostileCase({
      channel: "legacy",
      label: `GET /audit: ${label}`,
      expect: { statuses },
      send: (signal) =>
        client.send(
          { method, path: `/audit?${query}`, headers: { authorization: `Bearer ${target.acme.reader}`, ...headers } },
          signal,
        ),
    });
  return fc.oneof(
    fc
      .record({
        param: fc.constantFrom("startDate", "stopDate"),
        value: fc.constantFrom(
          "13/01/2020",
          "02/30/2021",
          "1/1/99999",
          "00/00/0000",
          "12/01/2015 extra",
          "2015-12-01",
          "%zz",
          "12%2F01%2F2015x",
          "-1/1/2020",
          "12/01/0000",
        ),
      })
      .map(({ param, value }) => get(`${param}=${value}`, `${param}=${value.replace(/ /g, "%20")}`)),
    fc
      .constantFrom(
        "action=BOGUS",
        "action=login",
        "action=LOGIN&action=CREATE",
        "resultCode=maybe",
        "resultCode=true",
        "bogus=1",
        "userName=a&userName=b",
        "startDate=12/02/2015&stopDate=12/01/2015",
        "__proto__=1",
      )
      .map((q) => get(q, q)),
    fc
      .constantFrom("application/xml", "text/xml")
      .chain((accept) =>
        fc
          .constantFrom("action=BOGUS", "startDate=13/13/2013")
          .map((q) => get(`${q} as ${accept}`, q, [400], { accept })),
      ),
    fc
      .constantFrom("text/html", "application/json;q=0", "image/png")
      .map((accept) => get(`Accept ${accept}`, "", [406], { accept })),
    fc.constantFrom("POST", "PUT", "DELETE").map((method) => get(`${method}`, "", [405], {}, method)),
    fc
      .constantFrom("Bearer", "Basic !!!", "Bearer at_nope")
      .map((authorization) => get(`Authorization ${authorization}`, "", [401], { authorization })),
    fc.constant(get("a writer's key", "", [403], { authorization: `Bearer ${target.acme.writer}` })),
  );
}

/**
 * Frontier `POST /v1beta1/organizations/{org}/auditlogs`: organization ids that traverse, encode or name another
 * tenant, and bodies whose logs are malformed, mistyped, too many or too big.
 */
export function frontierCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const log: Record<string, Json> = {
    source: "s",
    action: "a",
    actor: { id: "u" },
    context: { k: "v" },
    created_at: "2024-01-01T00:00:00Z",
  };
  const base: Record<string, Json> = { logs: [log] };
  const baseText = Buffer.from(JSON.stringify(base));
  const post = (
    label: string,
    body: Uint8Array | Uint8Array[],
    statuses = [400],
    org = "acme",
    headers: Record<string, string> = {},
  ) =>
    hostileCase({
      channel: "legacy",
      label: `Frontier ${org.slice(0, 30)}: ${label}`,
      expect: { statuses },
      send: (signal) =>
        client.send(
          {
            method: "POST",
            path: `/v1beta1/organizations/${org}/auditlogs`,
            headers: { "content-type": "application/json", authorization: `Bearer ${target.acme.writer}`, ...headers },
            body,
          },
          signal,
        ),
    });
  const withLog = (patch: Record<string, Json>) => Buffer.from(JSON.stringify({ logs: [{ ...log, ...patch }] }));
  return fc.oneof(
    fc
      .constantFrom(
        "..",
        "%2e%2e",
        "acme%2F..%2Fglobex",
        "acme%00",
        "%zz",
        "ACME",
        "99999999",
        "x".repeat(300),
        "%c0%ae",
      )
      // Malformed percent-encoding (%zz, overlong UTF-8) is a 400 before any tenant is looked at.
      .map((org) => post("a valid body", baseText, [400, 403, 404], org)),
    fc.constant(post("another tenant's organization", baseText, [403], "globex")),
    fc
      .record({
        field: fc.constantFrom("source", "action", "id", "actor", "target", "context", "created_at"),
        wrong: fc.constantFrom(...wrongTypes),
      })
      .filter(({ field, wrong }) => !(["actor", "target", "context"].includes(field) && wrong[0] === "an object"))
      .map(({ field, wrong }) =>
        post(
          `logs[0].${field} = ${wrong[0]}`,
          withRaw({ logs: [] }, "logs", `[${withRaw(log, field, wrong[1]).toString()}]`),
        ),
      ),
    fc.constantFrom("source", "action").map((field) => post(`logs[0].${field} missing`, withLog({ [field]: null }))),
    fc
      .constantFrom("2024-13-01T00:00:00Z", "yesterday", "10000-01-01T00:00:00Z")
      .map((t) => post(`created_at ${t}`, withLog({ created_at: t }))),
    fc.constant(post("created_at and createdAt", withLog({ createdAt: "2024-01-01T00:00:00Z" }))),
    fc
      .constantFrom<Json>({ k: 1 }, { k: { deep: "x" } }, { k: null })
      .map((context) => post(`context ${JSON.stringify(context)}`, withLog({ context }))),
    fc.constant(post("an unknown log field", withLog({ bogus: "x" }))),
    fc.constant(post("an unknown body field", Buffer.from(JSON.stringify({ ...base, bogus: 1 })))),
    fc
      .integer({ min: 1001, max: 10_000 })
      .map((n) => post(`${n} logs`, Buffer.from(JSON.stringify({ logs: Array.from({ length: n }, () => log) })))),
    fc.constant(
      post(
        "a context past 64 KiB",
        withLog({
          context: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`key-${i}`, `value-${i}-padding`])),
        }),
      ),
    ),
    fc.constantFrom("has space", "x".repeat(200)).map((id) => post(`id ${id.slice(0, 20)}`, withLog({ id }))),
    fc.constant(post("an action of 5000 characters", withLog({ action: "x".repeat(5000) }))),
    fc
      .integer({ min: 1, max: baseText.length - 1 })
      .map((n) => post(`JSON cut to ${n} bytes`, baseText.subarray(0, n))),
    badUtf8.map(({ at, bad }) => {
      const i = at % (baseText.length + 1);
      return post(`invalid UTF-8 at byte ${i}`, Buffer.concat([baseText.subarray(0, i), bad, baseText.subarray(i)]));
    }),
    fc
      .constantFrom("", "[]", "null", '"x"', `{"logs":${deep(100_000)}}`)
      .map((text) => post(`body ${text.slice(0, 20)}`, Buffer.from(text))),
    fc
      .constantFrom("text/plain", "application/xml", "")
      .map((type) => post(`sent as ${JSON.stringify(type)}`, baseText, [415], "acme", { "content-type": type })),
    fc.boolean().map((chunked) => {
      const big = Buffer.concat([Buffer.from('{"logs":"'), Buffer.alloc(MAX_BODY_BYTES, 0x61), Buffer.from('"}')]);
      return post(
        `${big.length} bytes${chunked ? " chunked" : ""}`,
        chunked ? [big.subarray(0, 1 << 20), big.subarray(1 << 20)] : big,
        [413],
      );
    }),
  );
}

/** XML bombs and external entities: refused before any parser could expand or fetch anything. */
const XML_ATTACKS: [string, string][] = [
  [
    "billion laughs",
    `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? "" : i};`.repeat(10)}">`).join("")}]><universalEvent><name>&lol9;</name></universalEvent>`,
  ],
  [
    "quadratic blowup",
    `<!DOCTYPE x [<!ENTITY a "${"a".repeat(50_000)}">]><universalEvent><name>${"&a;".repeat(5_000)}</name></universalEvent>`,
  ],
  [
    "external entity (file)",
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><universalEvent><name>&xxe;</name></universalEvent>',
  ],
  [
    "external entity (http)",
    '<!DOCTYPE x [<!ENTITY xxe SYSTEM "http://127.0.0.1:1/steal">]><universalEvent><name>&xxe;</name></universalEvent>',
  ],
  [
    "parameter entity",
    '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/dtd"> %p;]><universalEvent><name>x</name></universalEvent>',
  ],
  [
    "external DTD",
    '<!DOCTYPE universalEvent SYSTEM "http://127.0.0.1:1/evil.dtd"><universalEvent><name>x</name></universalEvent>',
  ],
  ["lower-case doctype", '<!doctype x [<!entity e "e">]><universalEvent><name>&e;</name></universalEvent>'],
  ["entity declaration without a DOCTYPE", '<universalEvent><!ENTITY e "e"><name>&e;</name></universalEvent>'],
  ["undefined entity reference", "<universalEvent><name>&xxe;</name></universalEvent>"],
  ["character reference to NUL", "<universalEvent><name>&#0;</name></universalEvent>"],
  ["character reference past U+10FFFF", "<universalEvent><name>&#x110000;</name></universalEvent>"],
  [
    "XInclude",
    '<universalEvent xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" parse="text"/></universalEvent>',
  ],
  ["a prefixed root", '<u:universalEvent xmlns:u="urn:x"><u:name>x</u:name></u:universalEvent>'],
  ["two roots", "<universalEvent><name>x</name></universalEvent><universalEvent/>"],
  ["an unclosed element", "<universalEvent><name>x</universalEvent>"],
  ["mismatched tags", "<universalEvent><name>x</nam></universalEvent>"],
  ["a control character", "<universalEvent><name>a\u0001b</name></universalEvent>"],
  ["text after the root", "<universalEvent><name>x</name></universalEvent>trailing"],
  [
    "elements nested 100,000 deep",
    `<universalEvent>${"<a>".repeat(100_000)}${"</a>".repeat(100_000)}</universalEvent>`,
  ],
  [
    "10,000 attributes of the root",
    `<universalEvent ${Array.from({ length: 10_000 }, (_, i) => `a${i}="x"`).join(" ")}><name>x</name></universalEvent>`,
  ],
  ["a repeated name", "<universalEvent><name>a</name><name>b</name></universalEvent>"],
  ["__proto__ element", "<universalEvent><__proto__><polluted>1</polluted></__proto__></universalEvent>"],
  [
    "an encoding declaration it does not use",
    '<?xml version="1.0" encoding="UTF-16"?><universalEvent><name>x</name></universalEvent>',
  ],
  ["a wrong root", "<audit-filter><name>x</name></audit-filter>"],
];

/**
 * Universal Controller publish and list, with HTTP Basic: XML bombs, external entities and malformed XML (every one
 * refused before parsing or by the parser), malformed JSON, unknown templates and bad values, and filters that do
 * not parse. Plain-text 4xx answers, nothing stored.
 */
export function universalControllerCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const send = (
    route: "publish" | "list",
    label: string,
    body: Uint8Array | Uint8Array[],
    statuses: number[],
    headers: Record<string, string>,
  ) =>
    hostileCase({
      channel: "legacy",
      label: `UC ${route}: ${label}`,
      expect: { statuses },
      send: (signal) =>
        client.send(
          {
            method: "POST",
            path: route === "publish" ? "/uc/resources/universalevent/publish" : "/uc/resources/audit/list",
            headers: { authorization: route === "publish" ? target.basic.writer : target.basic.reader, ...headers },
            body,
          },
          signal,
        ),
    });
  const xml = { "content-type": "application/xml" };
  const json = { "content-type": "application/json" };
  const publishXml =
    '<universalEvent><name>hostile.tpl</name><ttl>5</ttl><attributes><attribute name="count">1</attribute></attributes></universalEvent>';
  const filterXml =
    "<audit-filter><auditType>Create</auditType><updatedTimeType>offset</updatedTimeType><updatedTime>-10d</updatedTime></audit-filter>";
  return fc.oneof(
    fc
      .record({
        attack: fc.constantFrom(...XML_ATTACKS),
        route: fc.constantFrom<"publish" | "list">("publish", "list"),
        type: fc.constantFrom("application/xml", "text/xml"),
      })
      // A wrong encoding declaration over UTF-8 bytes is read as UTF-8: its event name is then simply unknown.
      .map(({ attack, route, type }) => {
        const statuses = attack[0].startsWith("an encoding") && route === "publish" ? [404] : [400];
        return send(route, attack[0], Buffer.from(attack[1]), statuses, { "content-type": type });
      }),
    fc
      .integer({ min: 1, max: publishXml.length - 1 })
      .map((n) => send("publish", `XML cut to ${n} bytes`, Buffer.from(publishXml.slice(0, n)), [400], xml)),
    fc
      .integer({ min: 1, max: filterXml.length - 1 })
      .map((n) => send("list", `XML cut to ${n} bytes`, Buffer.from(filterXml.slice(0, n)), [400], xml)),
    badUtf8.map(({ at, bad }) => {
      const text = Buffer.from(publishXml);
      const i = at % (text.length + 1);
      return send(
        "publish",
        `invalid UTF-8 at byte ${i}`,
        Buffer.concat([text.subarray(0, i), bad, text.subarray(i)]),
        [400],
        xml,
      );
    }),
    fc
      .constantFrom<[string, string, number]>(
        ["an unknown Universal Event", "<universalEvent><name>no.such.event</name></universalEvent>", 404],
        ["no name", "<universalEvent><ttl>5</ttl></universalEvent>", 400],
        ["a TTL that is not a number", "<universalEvent><name>hostile.tpl</name><ttl>soon</ttl></universalEvent>", 400],
        [
          "a negative TTL",
          '<universalEvent><name>hostile.tpl</name><ttl>-5</ttl><attributes><attribute name="count">1</attribute></attributes></universalEvent>',
          400,
        ],
        [
          "a TTL past int64",
          '<universalEvent><name>hostile.tpl</name><ttl>99999999999999999999999</ttl><attributes><attribute name="count">1</attribute></attributes></universalEvent>',
          400,
        ],
        ["the required attribute missing", "<universalEvent><name>hostile.tpl</name></universalEvent>", 400],
        [
          "a count that is not an integer",
          '<universalEvent><name>hostile.tpl</name><attributes><attribute name="count">many</attribute></attributes></universalEvent>',
          400,
        ],
        [
          "an attribute without a name",
          '<universalEvent><name>hostile.tpl</name><attributes><attribute name="count">1</attribute><attribute>x</attribute></attributes></universalEvent>',
          400,
        ],
        [
          "an unknown attribute",
          '<universalEvent><name>hostile.tpl</name><attributes><attribute name="count">1</attribute><attribute name="zzz">x</attribute></attributes></universalEvent>',
          400,
        ],
        ["an unknown element", "<universalEvent><name>hostile.tpl</name><bogus/></universalEvent>", 400],
      )
      .map(([label, body, status]) => send("publish", label, Buffer.from(body), [status], xml)),
    fc
      .constantFrom<[string, string]>(
        ["name a number", '{"name":5}'],
        ["ttl an object", '{"name":"hostile.tpl","ttl":{}}'],
        ["ttl a fraction", '{"name":"hostile.tpl","ttl":1.5}'],
        ["attributes a number", '{"name":"hostile.tpl","attributes":5}'],
        ["attributes deep", `{"name":"hostile.tpl","attributes":${deep(50_000)}}`],
        ["an attribute value an object", '{"name":"hostile.tpl","attributes":[{"name":"count","value":{}}]}'],
        ["an unknown key", '{"name":"hostile.tpl","bogus":1}'],
        ["truncated", '{"name":"hostile.tpl","attri'],
        ["an array", "[]"],
      )
      .map(([label, body]) => send("publish", `JSON ${label}`, Buffer.from(body), [400], json)),
    fc
      .constantFrom(
        "<audit-filter><updatedTimeType>offset</updatedTimeType><updatedTime>-10x</updatedTime></audit-filter>",
        "<audit-filter><updatedTimeType>offset</updatedTimeType><updatedTime>-99999999999999999999d</updatedTime></audit-filter>",
        "<audit-filter><updatedTimeType>bogus</updatedTimeType></audit-filter>",
        "<audit-filter><status>maybe</status></audit-filter>",
        "<audit-filter><includeChildAudits>perhaps</includeChildAudits></audit-filter>",
        "<audit-filter><bogus>1</bogus></audit-filter>",
        "<audit-filter><createdBy>a</createdBy><createdBy>b</createdBy></audit-filter>",
        `<audit-filter><createdBy>${"x".repeat(5000)}</createdBy></audit-filter>`,
      )
      .map((body) => send("list", body.replace(/<\/?audit-filter>/g, "").slice(0, 60), Buffer.from(body), [400], xml)),
    fc
      .constantFrom(
        '{"updatedTime":{}}',
        '{"auditType":[1]}',
        '{"status":"maybe"}',
        '{"bogus":1}',
        '"x"',
        `{"auditType":${deep(10_000)}}`,
      )
      .map((body) => send("list", `JSON ${body.slice(0, 30)}`, Buffer.from(body), [400], json)),
    fc
      .record({
        route: fc.constantFrom<"publish" | "list">("publish", "list"),
        type: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", ""),
      })
      .map(({ route, type }) =>
        send(
          route,
          `sent as ${JSON.stringify(type)}`,
          Buffer.from(route === "publish" ? publishXml : filterXml),
          [415],
          { "content-type": type },
        ),
      ),
    fc
      .record({ route: fc.constantFrom<"publish" | "list">("publish", "list"), chunked: fc.boolean() })
      .map(({ route, chunked }) => {
        const big = Buffer.concat([
          Buffer.from("<universalEvent><name>"),
          Buffer.alloc(MAX_BODY_BYTES, 0x61),
          Buffer.from("</name></universalEvent>"),
        ]);
        return send(
          route,
          `${big.length} bytes${chunked ? " chunked" : ""}`,
          chunked ? [big.subarray(0, 1 << 20), big.subarray(1 << 20)] : big,
          [413],
          xml,
        );
      }),
    fc
      .constantFrom<[string, string, number]>(
        ["no credentials", "", 401],
        ["a bearer token", `Bearer ${target.acme.writer}`, 401],
        ["Basic that is not base64 of user:password", "Basic !!!", 401],
        ["a wrong password", `Basic ${Buffer.from("acme/uc-writer:wrong-password").toString("base64")}`, 401],
        ["NUL in the user name", `Basic ${Buffer.from("acme/uc\u0000writer:x").toString("base64")}`, 401],
        ["a reader publishing", target.basic.reader, 403],
      )
      .map(([label, authorization, status]) =>
        send("publish", label, Buffer.from(publishXml), [status], { ...xml, authorization }),
      ),
  );
}
