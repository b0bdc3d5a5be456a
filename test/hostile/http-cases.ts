import http from "node:http";
import {
  create,
  type DescMessage,
  type DescMethod,
  getOption,
  hasOption,
  type JsonObject,
  toJson,
} from "@bufbuild/protobuf";
import fc from "fast-check";
import { http as httpRule } from "../../gen/google/api/annotations_pb.js";
import { FieldBehavior, field_behavior } from "../../gen/google/api/field_behavior_pb.js";
import { documented } from "../support/documented-errors.js";
import { restRequest } from "../support/rest-request.js";
import { type Channel, type HostileCase, hostileCase, type Outcome, type Target } from "./harness.js";
import { type InvalidRequest, invalidRequests } from "./invalid-requests.js";
import { type JsonFault, jsonFaults } from "./json-faults.js";
import { allMethods, MAX_BODY_BYTES, tokenFor } from "./rpc-cases.js";
import { restOutcome } from "./wire.js";

export interface RawRequest {
  method: string;
  /** Sent exactly as given: no dot-segment removal or re-encoding, unlike fetch. */
  path: string;
  headers?: Record<string, string>;
  /** One buffer (with Content-Length) or several, sent chunked. */
  body?: Uint8Array | Uint8Array[];
}

/** HTTP/1.1 over a keep-alive agent, with the path untouched: what a hostile client can put on the wire. */
export class RawHttp {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 24 });

  constructor(private readonly url: string) {}

  send(req: RawRequest, signal: AbortSignal): Promise<Outcome> {
    const { hostname, port } = new URL(this.url);
    return new Promise((resolve) => {
      const chunked = Array.isArray(req.body);
      const headers: Record<string, string> = { ...req.headers };
      if (req.body && !chunked && headers["content-length"] === undefined) {
        headers["content-length"] = String((req.body as Uint8Array).length);
      }
      const out = http.request(
        { hostname, port, method: req.method, path: req.path, headers, agent: this.agent, signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            resolve(
              restOutcome(res.statusCode, res.headers["content-type"] ?? "", Buffer.concat(chunks).toString("utf8")),
            );
          });
          res.on("error", (e) => resolve({ status: res.statusCode, cut: e.message, detail: "" }));
        },
      );
      out.on("error", (e) => resolve({ cut: e.message, detail: "" }));
      if (Array.isArray(req.body)) for (const part of req.body) out.write(part);
      else if (req.body) out.write(req.body);
      out.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The one documented answer to a raw request: an HTTP status, and for REST's google.rpc.Status its reason and fields. */
interface Documented {
  status: number;
  reason?: string;
  fields?: string[];
}

function raw(
  channel: Channel,
  label: string,
  expected: number | Documented,
  req: RawRequest,
  client: RawHttp,
  check?: (o: Outcome) => string | undefined,
): HostileCase {
  const { status, reason, fields } = typeof expected === "number" ? { status: expected } : expected;
  return hostileCase({
    channel,
    label,
    expect: { statuses: [status], reason, fields, check },
    send: (signal) => client.send(req, signal),
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const jsonType = { "content-type": "application/json" };

/** Tenant path segments that try to escape the caller's tenant or confuse decoding; none names a real tenant. */
const TRAVERSALS = [
  "..",
  ".",
  "%2e%2e",
  "%2E%2E",
  "..%2f..",
  "..%2Fglobex",
  "%2e%2e%2fglobex",
  "acme%2F..%2Fglobex",
  "acme%2fglobex",
  "%252e%252e",
  "acme%252fglobex",
  "%c0%ae%c0%ae",
  "%c0%af",
  "%ef%bc%8e%ef%bc%8e",
  "%00",
  "acme%00",
  "acme%00globex",
  "%zz",
  "%",
  "acme%2",
  "acme\\..\\globex",
  "..;",
  "acme;globex",
  "%20acme",
  "acme%20",
  "ACME",
  "Acme",
  "acme%0d%0aX-Injected:%201",
  "%e2%80%ae",
  "globex%23",
  "~acme",
  "acme..",
  "*",
  "a".repeat(64),
  "%ff%fe",
  "acme%3Abatch",
];

/** Paths around a valid route that must not reach it: dot segments, doubled slashes, encoded separators and verbs. */
const ROUTE_TRICKS = [
  "/v1/tenants/acme/./events",
  "/v1/tenants/acme/events/../../globex/events",
  "//v1/tenants/acme/events",
  "/v1//tenants/acme/events",
  "/v1/tenants/acme/events%2F",
  "/v1/tenants/acme/events;jsessionid=1",
  "/v1/tenants/acme/events%3AbatchCreate",
  "/v1/tenants/acme/events:BATCHCREATE",
  "/v1/tenants/acme/events:",
  "/v1/tenants/acme/events::batchCreate",
  "/v1/tenants/acme/events:batchCreate:publish",
  "/./v1/tenants/acme/events",
  "/V1/TENANTS/acme/EVENTS",
  "/v1/tenants/acme/events%00",
  "/v1/tenants/acme/events/%2e%2e/%2e%2e/globex/events",
  `/v1/tenants/acme/events/${"x/".repeat(2000)}`,
  "/v1/tenants/acme/eventsx",
  "/v1/tenants/acme%2Fevents",
];

/** A tenant slug (docs/auth.md, "Identity model"). */
const SLUG = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * What docs/rest.md promises for a tenant path segment: malformed percent-encoding is 400 `MALFORMED_PATH`; anything
 * else is decoded into `tenant`, where a value that is not a slug is 400 `INVALID_FIELD` naming `tenant`.
 */
function tenantSegmentAnswer(segment: string): Documented {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return { status: 400, reason: "MALFORMED_PATH", fields: [] };
  }
  if (SLUG.test(decoded)) throw new Error(`traversal ${segment} is a valid tenant slug: it tests nothing`);
  return { status: 400, reason: "INVALID_FIELD", fields: ["tenant"] };
}

/** REST requests to hostile paths: a 4xx (no route, bad tenant, method not allowed), never a write or a read. */
export function restPathCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const event = Buffer.from(JSON.stringify({ action: "hostile.rest" }));
  return fc.oneof(
    fc
      .record({
        tenant: fc.constantFrom(...TRAVERSALS),
        route: fc.constantFrom(
          { method: "POST", suffix: "/events", body: event, token: target.acme.writer },
          { method: "GET", suffix: "/events", body: undefined, token: target.acme.reader },
          {
            method: "POST",
            suffix: "/events:batchCreate",
            body: Buffer.from('{"events":[{"action":"x"}]}'),
            token: target.acme.writer,
          },
          { method: "GET", suffix: "/credentials", body: undefined, token: target.acme.admin },
          {
            method: "POST",
            suffix: "/apiKeys",
            body: Buffer.from('{"name":"k","roles":["ROLE_ADMIN"]}'),
            token: target.app.adminToken,
          },
        ),
      })
      .map(({ tenant, route }) =>
        raw(
          "rest",
          `${route.method} /v1/tenants/${tenant.slice(0, 40)}${route.suffix}`,
          tenantSegmentAnswer(tenant),
          {
            method: route.method,
            path: `/v1/tenants/${tenant}${route.suffix}`,
            headers: { ...jsonType, ...bearer(route.token) },
            body: route.body,
          },
          client,
        ),
      ),
    fc
      .record({
        path: fc.constantFrom(...ROUTE_TRICKS),
        method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
      })
      .map(({ path, method }) =>
        raw(
          "rest",
          `${method} ${path.slice(0, 60)}`,
          // No route matches (docs/rest.md): dot segments, doubled slashes and encoded separators are not normalised.
          // (`/v1/tenants/acme/events/..` is GetEvent's route with the id "..", a valid id: not a trick.)
          { status: 404, reason: "UNKNOWN_ROUTE", fields: [] },
          {
            method,
            path,
            headers: { ...jsonType, ...bearer(target.acme.readerWriter) },
            body: method === "GET" ? undefined : event,
          },
          client,
        ),
      ),
  );
}

/** Query strings that break the List route's parameters, each with its documented reason and field (docs/rest.md). */
const BAD_QUERIES: [string, string, string[]][] = [
  ["pageSize=99999999999999999999", "INVALID_FIELD", ["pageSize"]],
  ["pageSize=-1", "INVALID_FIELD", ["pageSize"]],
  ["pageSize=1e3", "INVALID_FIELD", ["pageSize"]],
  ["pageSize=0x10", "INVALID_FIELD", ["pageSize"]],
  ["pageSize=1.5", "INVALID_FIELD", ["pageSize"]],
  ["pageSize=", "INVALID_FIELD", ["pageSize"]],
  ["pageSize=1&pageSize=2", "INVALID_FIELD", ["pageSize"]],
  ["page_size=1&pageSize=2", "INVALID_FIELD", ["pageSize"]],
  ["startTime=garbage", "INVALID_FIELD", ["startTime"]],
  ["startTime=2024-13-01T00:00:00Z", "INVALID_FIELD", ["startTime"]],
  ["startTime=10000-01-01T00:00:00Z", "INVALID_FIELD", ["startTime"]],
  ["outcome=BOGUS", "INVALID_FIELD", ["outcome"]],
  ["outcome=99", "INVALID_FIELD", ["outcome"]],
  ["order=7", "INVALID_FIELD", ["order"]],
  ["tenant=globex", "UNKNOWN_QUERY_PARAMETER", ["tenant"]],
  ["pageToken=garbage", "INVALID_PAGE_TOKEN", ["pageToken"]],
  ["foo=1", "UNKNOWN_QUERY_PARAMETER", ["foo"]],
  ["__proto__=1", "UNKNOWN_QUERY_PARAMETER", ["__proto__"]],
  ["constructor.prototype=1", "UNKNOWN_QUERY_PARAMETER", ["constructor.prototype"]],
  ["actorId.x=1", "UNKNOWN_QUERY_PARAMETER", ["actorId.x"]],
  ["event.action=x", "UNKNOWN_QUERY_PARAMETER", ["event.action"]],
  ["%zz=1", "MALFORMED_QUERY", []],
  ["actorId=%zz", "MALFORMED_QUERY", []],
  ["actorId=%00", "INVALID_FIELD", ["actorId"]],
  ["actions=*", "INVALID_FIELD", ["actions[0]"]],
  ["actions=a*b", "INVALID_FIELD", ["actions[0]"]],
  ["includeChildren=maybe", "INVALID_FIELD", ["includeChildren"]],
  ["activeOnly=2", "INVALID_FIELD", ["activeOnly"]],
  ["startTime=1&endTime=0", "INVALID_FIELD", ["startTime"]],
];

/** Query strings that break the List route's parameters: unknown, repeated, malformed or out of range. */
export function restQueryCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const actions = (n: number) => Array.from({ length: n }, (_, i) => `actions=a${i}`).join("&");
  const queries: fc.Arbitrary<[string, Documented]> = fc.oneof(
    fc
      .constantFrom(...BAD_QUERIES)
      .map(([q, reason, fields]): [string, Documented] => [q, { status: 400, reason, fields }]),
    // Over 50 actions, well under the 32 KiB header limit; then well over it, refused before routing with 431
    // (docs/limits.md). Nothing near the limit, where the request line's other bytes would decide.
    fc
      .integer({ min: 51, max: 1500 })
      .map((n): [string, Documented] => [actions(n), { status: 400, reason: "INVALID_FIELD", fields: ["actions"] }]),
    fc.integer({ min: 3200, max: 4000 }).map((n): [string, Documented] => [actions(n), { status: 431 }]),
    fc
      .integer({ min: 2000, max: 20_000 })
      .map((n): [string, Documented] => [
        `actorId=${"x".repeat(n)}`,
        { status: 400, reason: "INVALID_FIELD", fields: ["actorId"] },
      ]),
  );
  return queries.map(([q, expected]) =>
    raw(
      "rest",
      `GET /v1/tenants/acme/events?${q.slice(0, 60)}`,
      expected,
      { method: "GET", path: `/v1/tenants/acme/events?${q}`, headers: bearer(target.acme.reader) },
      client,
    ),
  );
}

/** The message type a REST route's body carries: the request, or the field its rule's `body` names. */
function bodyType(method: DescMethod): DescMessage | undefined {
  if (!hasOption(method, httpRule)) return undefined;
  const body = getOption(method, httpRule).body;
  if (body === "") return undefined;
  if (body === "*") return method.input;
  const field = method.input.fields.find((f) => f.name === body);
  return field?.fieldKind === "message" ? field.message : undefined;
}

/**
 * The documented answer to a body that does not decode (docs/rest.md, "Request assembly" and "Errors"): JSON the
 * transcoder cannot read, or a non-object where the body is the request, is MALFORMED_BODY; a body that is one field
 * of the request is that field's value, so a non-object there is INVALID_FIELD naming `(body)`; an unknown key is
 * UNKNOWN_FIELD and a value of the wrong type INVALID_FIELD, each named by its path as the caller wrote it.
 */
function restJsonFaultAnswer(method: DescMethod, f: JsonFault): Documented {
  const body = getOption(method, httpRule).body;
  if (f.kind === "not-json" || f.unreadable || (f.kind === "not-object" && body === "*")) {
    return { status: 400, reason: "MALFORMED_BODY", fields: [] };
  }
  if (f.kind === "not-object") return { status: 400, reason: "INVALID_FIELD", fields: ["(body)"] };
  if (f.kind === "unknown-field") return { status: 400, reason: "UNKNOWN_FIELD", fields: [f.path as string] };
  return {
    status: 400,
    reason: "INVALID_FIELD",
    fields: [restField(method, `${body === "*" ? "" : `${body}.`}${f.path}`)],
  };
}

/** A valid body per REST route to break. */
const restBodyBases = new Map<string, JsonObject>([
  ["audit.v1.AuditEvent", { action: "hostile.rest", actor: { id: "u1" }, attributes: { k: "v" } }],
  ["audit.v1.BatchCreateRequest", { events: [{ action: "hostile.rest" }] }],
  ["audit.v1.PublishRequest", { eventName: "hostile.tpl", attributes: [{ name: "count", value: "1" }] }],
  ["audit.v1.EventTemplate", { name: "t.rest", attributes: [{ name: "a", type: "ATTRIBUTE_TYPE_STRING" }] }],
]);

/**
 * REST bodies: malformed JSON for every route that takes one, the wrong media type, a body where none belongs, and
 * bodies over the limit (declared, or streamed chunked without a length).
 */
export function restBodyCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const withBody = allMethods.filter((m) => bodyType(m) !== undefined);
  const routeOf = (method: DescMethod) => {
    const vars: JsonObject = { tenant: "acme", name: "hostile.tpl", id: "no-such-credential" };
    const req = restRequest(
      method,
      Object.fromEntries(Object.entries(vars).filter(([k]) => method.input.fields.some((f) => f.name === k))),
    );
    if (!req) throw new Error(`${method.name} has no REST route`);
    return req;
  };
  const headersFor = (method: DescMethod) => ({ ...jsonType, ...bearer(tokenFor(target, method)) });
  return fc.oneof(
    fc
      .constantFrom(...withBody)
      .chain((method) => {
        const type = bodyType(method) as DescMessage;
        return jsonFaults(type, restBodyBases.get(type.typeName) ?? {}).map((f) => ({ method, f }));
      })
      .map(({ method, f }) => {
        const route = routeOf(method);
        return raw(
          "rest",
          `${route.method} ${route.path}: ${f.label}`,
          restJsonFaultAnswer(method, f),
          { method: route.method, path: route.path, headers: headersFor(method), body: f.bytes },
          client,
        );
      }),
    fc
      .record({
        method: fc.constantFrom(...withBody),
        type: fc.constantFrom(
          "text/plain",
          "application/xml",
          "application/x-www-form-urlencoded",
          "application/json; charset=latin1",
          "application/jsonx",
          "",
        ),
      })
      .map(({ method, type }) => {
        const route = routeOf(method);
        return raw(
          "rest",
          `${route.method} ${route.path} as ${JSON.stringify(type)}`,
          { status: 415, reason: "UNSUPPORTED_MEDIA_TYPE", fields: [] },
          {
            method: route.method,
            path: route.path,
            headers: { ...headersFor(method), "content-type": type },
            body: Buffer.from("{}"),
          },
          client,
        );
      }),
    fc
      .record({ method: fc.constantFrom(...withBody), encoding: fc.constantFrom("gzip", "br", "deflate") })
      .map(({ method, encoding }) => {
        const route = routeOf(method);
        return raw(
          "rest",
          `${route.method} ${route.path} with Content-Encoding ${encoding}`,
          { status: 415, reason: "UNSUPPORTED_MEDIA_TYPE", fields: [] },
          {
            method: route.method,
            path: route.path,
            headers: { ...headersFor(method), "content-encoding": encoding },
            body: Buffer.from("{}"),
          },
          client,
        );
      }),
    fc.constant(
      raw(
        "rest",
        "GET /v1/tenants/acme/events with a body",
        400,
        {
          method: "GET",
          path: "/v1/tenants/acme/events",
          headers: { ...jsonType, ...bearer(target.acme.reader) },
          body: Buffer.from('{"pageSize":1}'),
        },
        client,
      ),
    ),
    fc
      .record({
        method: fc.constantFrom(...withBody),
        extra: fc.integer({ min: 1, max: 64 * 1024 }),
        chunked: fc.boolean(),
      })
      .map(({ method, extra, chunked }) => {
        const route = routeOf(method);
        const size = MAX_BODY_BYTES + extra;
        // A JSON string filling the body: valid if it were allowed, so only the size refuses it.
        const bytes = Buffer.concat([Buffer.from('{"x":"'), Buffer.alloc(size - 8, 0x61), Buffer.from('"}')]);
        const body = chunked ? [bytes.subarray(0, size >> 1), bytes.subarray(size >> 1)] : bytes;
        return raw(
          "rest",
          `${route.method} ${route.path}: ${size} bytes${chunked ? " chunked" : ""}`,
          { status: 413, reason: "BODY_TOO_LARGE", fields: [] },
          { method: route.method, path: route.path, headers: headersFor(method), body },
          client,
        );
      }),
  );
}

/**
 * A contract field path as a REST caller sees it (docs/rest.md, "Field paths are the caller's"): relative to the body
 * when the route's body is one field, in JSON names, except for Frontier's routes, which keep proto names.
 */
function restField(method: DescMethod, field: string): string {
  const body = hasOption(method, httpRule) ? getOption(method, httpRule).body : "";
  const relative = body && body !== "*" && field.startsWith(`${body}.`) ? field.slice(body.length + 1) : field;
  if (method.parent.typeName.startsWith("raystack.")) return relative;
  return relative.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * The documented answer to an invalid request over REST. A request without its route's body field is sent as `{}`,
 * an empty message, so the refusal is the table's `rest` answer about that message's own fields.
 */
function restAnswer(r: InvalidRequest): Documented {
  const body = hasOption(r.method, httpRule) ? getOption(r.method, httpRule).body : "";
  const answer = r.field !== undefined && r.field === body ? r.rest : r;
  if (!answer) throw new Error(`${r.method.name}: ${r.label}: REST sends {} for ${body}; give the table a rest answer`);
  return {
    status: documented(answer.reason).http,
    reason: answer.reason,
    fields: answer.field === undefined ? [] : [restField(r.method, answer.field)],
  };
}

/** The invalid-request tables over REST: the documented status, reason and field of each. */
export function restInvalidRequestCases(client: RawHttp, target: Target): fc.Arbitrary<HostileCase> {
  const tables = allMethods.filter((m) => hasOption(m, httpRule)).map((m) => invalidRequests.get(m));
  return fc
    .oneof(...tables.filter((t) => t !== undefined))
    .map((r) => {
      let message: JsonObject | undefined;
      try {
        message = toJson(r.method.input, create(r.method.input, r.message)) as JsonObject;
      } catch {
        message = undefined;
      }
      return { r, message };
    })
    .filter(({ message }) => message !== undefined)
    .map(({ r, message }) => {
      const json = message as JsonObject;
      // The RPC defaults an empty optional tenant to the caller's; REST must name it in the path.
      const tenant = r.method.input.fields.find((f) => f.name === "tenant");
      if (tenant && !getOption(tenant, field_behavior).includes(FieldBehavior.REQUIRED)) json.tenant ??= "acme";
      let req: ReturnType<typeof restRequest>;
      try {
        req = restRequest(r.method, json);
      } catch {
        // A lone surrogate cannot be percent-encoded into a path: no client could send it.
        return undefined;
      }
      if (!req) throw new Error(`${r.method.name} has no REST route`);
      const token =
        r.caller === "none" ? undefined : r.caller === "superadmin" ? target.app.adminToken : target.acme.admin;
      // An empty path variable leaves an empty segment, which no route matches (UNKNOWN_ROUTE); a path past the
      // 32 KiB header limit is refused before routing (431, docs/limits.md). Paths near the limit, where the request
      // line's other bytes would decide, are not sent.
      const length = req.path.length;
      if (length > 30_000 && length < 34_000) return undefined;
      const expected: Documented =
        length >= 34_000
          ? { status: 431 }
          : /\/\/|\/(?:$|\?|:)/.test(req.path)
            ? { status: 404, reason: "UNKNOWN_ROUTE", fields: [] }
            : restAnswer(r);
      return raw(
        "rest",
        `${r.method.name}: ${r.label}`,
        expected,
        {
          method: req.method,
          path: req.path,
          headers: { ...jsonType, ...(token ? bearer(token) : {}) },
          body: req.body === undefined ? undefined : Buffer.from(req.body),
        },
        client,
      );
    })
    .filter((c): c is HostileCase => c !== undefined);
}
