import http2 from "node:http2";
import net from "node:net";
import { type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { HttpRuleError } from "../../src/rest/bindings.js";
import { createRestTranscoder } from "../../src/rest/transcoder.js";
import { createInvoker, registration } from "../../src/server/invoker.js";
import * as invalid from "../gen/resttest/v1/invalid_rules_pb.js";
import { Color, type Echo, EchoSchema, EchoService, type ParamsSchema } from "../gen/resttest/v1/rest_test_pb.js";
import { h2Request } from "../support/h2.js";
import { type EchoServer, MAX_BODY_BYTES, startEchoServer } from "./echo-server.js";

let server: EchoServer;
let client: Client<typeof EchoService>;
beforeAll(async () => {
  server = await startEchoServer({ env: { CORS_ORIGINS: "https://app.example.com" } });
  client = createClient(EchoService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
});
afterAll(() => server?.close());

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body whose shape each test asserts
  json: any;
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string>; base?: string } = {},
): Promise<Reply> {
  const { body } = options;
  const headers: Record<string, string> = { ...options.headers };
  if (body !== undefined && !("content-type" in headers)) headers["content-type"] = "application/json";
  const res = await fetch((options.base ?? server.url) + path, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

type Rpc = Exclude<keyof Client<typeof EchoService>, "watch">;
type ParamsInit = MessageInitShape<typeof ParamsSchema>;

/** Each REST request must reach the handler as the same message a Connect client sends, and answer the same JSON. */
const routes: Array<{ name: string; method: string; path: string; body?: unknown; rpc: Rpc; same: ParamsInit }> = [
  {
    name: "every scalar type from the query, JSON and proto names",
    method: "GET",
    path:
      "/v1/params?id=a&int32Value=-5&int64_value=9007199254740993&uint32Value=4294967295" +
      "&uint64_value=18446744073709551615&sint32Value=-3&fixed64Value=7&doubleValue=1.5&float_value=-2.25" +
      "&boolValue=true&bytesValue=aGVsbG8&color=COLOR_RED&name=a+b%26c",
    rpc: "search",
    same: {
      id: "a",
      int32Value: -5,
      int64Value: 9007199254740993n,
      uint32Value: 4294967295,
      uint64Value: 18446744073709551615n,
      sint32Value: -3,
      fixed64Value: 7n,
      doubleValue: 1.5,
      floatValue: -2.25,
      boolValue: true,
      bytesValue: new TextEncoder().encode("hello"),
      color: Color.RED,
      name: "a b&c",
    },
  },
  {
    name: "enums by number and name, repeated keys",
    method: "GET",
    path: "/v1/params?color=2&colors=1&colors=COLOR_BLUE&tags=x&tags=y&numbers=3&numbers=-4",
    rpc: "search",
    same: { color: Color.BLUE, colors: [Color.RED, Color.BLUE], tags: ["x", "y"], numbers: [3, -4] },
  },
  {
    name: "nested fields a.b.c",
    method: "GET",
    path: "/v1/params?inner.id=i&inner.deep.leaf=l&inner.deep.tags=t1&inner.deep.tags=t2&inner.count=3",
    rpc: "search",
    same: { inner: { id: "i", count: 3, deep: { leaf: "l", tags: ["t1", "t2"] } } },
  },
  {
    name: "well-known types in their proto-JSON forms",
    method: "GET",
    path:
      "/v1/params?time=2024-05-01T12:00:00.5Z&duration=1.5s&mask=id,inner.deep&wrappedInt32=5&wrapped_string=hi" +
      "&wrappedBool=false&wrappedInt64=-9&attributes=%7B%22a%22%3A1%7D&value=%22v%22",
    rpc: "search",
    same: {
      time: timestampFromDate(new Date("2024-05-01T12:00:00.500Z")),
      duration: { seconds: 1n, nanos: 500_000_000 },
      mask: { paths: ["id", "inner.deep"] },
      wrappedInt32: 5,
      wrappedString: "hi",
      wrappedBool: false,
      wrappedInt64: -9n,
      attributes: { a: 1 },
      value: { kind: { case: "stringValue", value: "v" } },
    },
  },
  {
    name: "an explicitly empty optional and a oneof member",
    method: "GET",
    path: "/v1/params?maybe=&choice_text=hi",
    rpc: "search",
    same: { maybe: "", choice: { case: "choiceText", value: "hi" } },
  },
  {
    name: "single-segment variable decodes %2F",
    method: "GET",
    path: "/v1/items/a%2Fb%20c",
    rpc: "getItem",
    same: { id: "a/b c" },
  },
  {
    name: "a colon in the last segment is part of the value unless a template declares the verb",
    method: "GET",
    path: "/v1/items/a:b",
    rpc: "getItem",
    same: { id: "a:b" },
  },
  {
    name: "additional binding with a multi-segment template keeps %2F",
    method: "GET",
    path: "/v1/shelves/s1/books/b%2F2%21",
    rpc: "getItem",
    same: { name: "shelves/s1/books/b%2F2!" },
  },
  {
    name: "** takes the rest of the path",
    method: "GET",
    path: "/v1/files/a/b%2fc/d%20e",
    rpc: "getItem",
    same: { name: "a/b%2fc/d e" },
  },
  {
    name: "** matches zero segments",
    method: "GET",
    path: "/v1/files?id=z",
    rpc: "getItem",
    same: { id: "z", name: "" },
  },
  {
    name: "two variables around an anonymous wildcard",
    method: "GET",
    path: "/v1/shelves/s1/any/whatever/books/b1",
    rpc: "getBook",
    same: { parent: "s1", id: "b1" },
  },
  {
    name: "nested field paths in the template, plus the query",
    method: "GET",
    path: "/v1/leaves/leafy/7?inner.id=i",
    rpc: "getLeaf",
    same: { inner: { id: "i", count: 7, deep: { leaf: "leafy" } } },
  },
  {
    name: 'body "*" with a custom verb',
    method: "POST",
    path: "/v1/items/i1:archive",
    body: { name: "n", inner: { count: 2 }, tags: ["x"], int64_value: "5", id: "i1" },
    rpc: "archive",
    same: { id: "i1", name: "n", inner: { count: 2 }, tags: ["x"], int64Value: 5n },
  },
  {
    name: 'body "*" left empty',
    method: "POST",
    path: "/v1/items/i1:archive",
    rpc: "archive",
    same: { id: "i1" },
  },
  {
    name: "a message field as the body, the rest from path and query (PATCH)",
    method: "PATCH",
    path: "/v1/items/i1?mask=count&tags=q",
    body: { id: "inner-id", count: 4 },
    rpc: "update",
    same: { id: "i1", inner: { id: "inner-id", count: 4 }, mask: { paths: ["count"] }, tags: ["q"] },
  },
  {
    name: "the same RPC through its PUT additional binding",
    method: "PUT",
    path: "/v1/items/i1",
    body: { count: 1 },
    rpc: "update",
    same: { id: "i1", inner: { count: 1 } },
  },
  {
    name: "a repeated field as the body",
    method: "POST",
    path: "/v1/items/i1:tag",
    body: ["a", "b"],
    rpc: "tag",
    same: { id: "i1", tags: ["a", "b"] },
  },
  { name: "DELETE", method: "DELETE", path: "/v1/items/i1", rpc: "delete", same: { id: "i1" } },
  { name: "a custom method", method: "SEARCH", path: "/v1/items?name=q", rpc: "find", same: { name: "q" } },
];

describe("routes: REST and Connect reach the handler with the same message", () => {
  test.each(routes)("$name", async ({ method, path, body, rpc, same }) => {
    const reply = await call(method, path, { body });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.headers.get("content-type")).toBe("application/json");
    const viaConnect = toJson(EchoSchema, await (client[rpc] as (req: ParamsInit) => Promise<Echo>)(same));
    expect(reply.json).toEqual(viaConnect);
    // The handler really saw the fields (so the comparison cannot pass with both sides empty).
    expect(Object.keys(reply.json.params ?? {}).length).toBeGreaterThan(0);
  });

  test("64-bit integers keep every digit", async () => {
    const reply = await call("GET", "/v1/params?int64Value=-9223372036854775808&uint64Value=18446744073709551615");
    expect(reply.json.params).toEqual({ int64Value: "-9223372036854775808", uint64Value: "18446744073709551615" });
  });

  test("response_body returns one field of the response", async () => {
    const reply = await call("GET", "/v1/items/i1/params?name=n");
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ id: "i1", name: "n" });
  });

  test("response_body on a repeated field, set and unset", async () => {
    expect((await call("GET", "/v1/items/i1/tags?tags=a&tags=b")).json).toEqual(["a", "b"]);
    const empty = await call("GET", "/v1/items/i1/tags");
    expect(empty.status).toBe(200);
    expect(empty.text).toBe("[]");
  });

  test("unpopulated fields are omitted, as in Connect JSON", async () => {
    const reply = await call("GET", "/v1/items/i1");
    expect(reply.json).toEqual({ params: { id: "i1" }, method: "GetItem" });
  });

  test("an RPC without an annotation has no REST route", async () => {
    const reply = await call("GET", "/v1/unannotated");
    expect(reply.status).toBe(404);
    expect(await client.unannotated({ id: "x" })).toMatchObject({ method: "Unannotated" });
  });

  test("HTTP/2 (h2c) requests are transcoded too", async () => {
    const session = http2.connect(server.url);
    try {
      const reply = await h2Request(session, { ":method": "GET", ":path": "/v1/items/h2?name=x" });
      const [status, body] = [Number(reply.headers[":status"]), reply.body.toString("utf8")];
      expect(status).toBe(200);
      expect(JSON.parse(body).params).toEqual({ id: "h2", name: "x" });
    } finally {
      session.close();
    }
  });
});

describe("headers: the REST call runs through the router's interceptors and deadlines", () => {
  test("Authorization and other headers reach the handler", async () => {
    const reply = await call("GET", "/v1/params", { headers: { authorization: "Bearer t0ken" } });
    expect(reply.json.authorization).toBe("Bearer t0ken");
    expect(reply.headers.get("x-intercepted")).toBe("Search");
  });

  test("interceptors can refuse a REST call, in the REST error shape", async () => {
    const reply = await call("GET", "/v1/items/i1", { headers: { "x-deny": "1" } });
    expect(reply.status).toBe(403);
    expect(reply.json).toEqual({ code: 7, message: "denied by interceptor", details: [] });
  });

  test.each([
    { header: "grpc-timeout", value: "2S", max: 2000 },
    { header: "grpc-timeout", value: "1500m", max: 1500 },
    { header: "x-server-timeout", value: "1.25", max: 1250 },
    { header: "connect-timeout-ms", value: "900", max: 900 },
  ])("$header: $value becomes the call's deadline", async ({ header, value, max }) => {
    const reply = await call("GET", "/v1/params", { headers: { [header]: value } });
    const timeoutMs = Number(reply.json.timeoutMs);
    expect(timeoutMs).toBeLessThanOrEqual(max);
    expect(timeoutMs).toBeGreaterThan(max - 500);
  });

  test("the shortest of several deadline headers wins", async () => {
    const reply = await call("GET", "/v1/params", { headers: { "grpc-timeout": "5S", "x-server-timeout": "1" } });
    expect(Number(reply.json.timeoutMs)).toBeLessThanOrEqual(1000);
  });

  test("without a deadline header there is none", async () => {
    expect((await call("GET", "/v1/params")).json.timeoutMs).toBeUndefined();
  });

  test("a call outliving its deadline is DEADLINE_EXCEEDED, 504", async () => {
    const reply = await call("GET", "/v1/params", { headers: { "grpc-timeout": "100m", "x-delay-ms": "3000" } });
    expect(reply.status).toBe(504);
    expect(reply.json.code).toBe(4);
  });
});

/** What every transcoder error must look like: google.rpc.Status with an ErrorInfo reason and the HTTP status. */
const errors: Array<{
  name: string;
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  code: number;
  reason?: string;
  /** The ErrorInfo's metadata, when it has any. */
  metadata?: Record<string, string>;
  field?: string;
  message: RegExp;
}> = [
  {
    name: "unknown path",
    method: "GET",
    path: "/v2/nothing",
    status: 404,
    code: 5,
    reason: "UNKNOWN_ROUTE",
    message: /no route for GET \/v2\/nothing/,
  },
  {
    name: "unknown query parameter",
    method: "GET",
    path: "/v1/params?bogus=1",
    status: 400,
    code: 3,
    reason: "UNKNOWN_QUERY_PARAMETER",
    field: "bogus",
    message: /"bogus": resttest.v1.Params has no field "bogus"/,
  },
  {
    name: "unknown nested query parameter",
    method: "GET",
    path: "/v1/params?inner.nope=1",
    status: 400,
    code: 3,
    reason: "UNKNOWN_QUERY_PARAMETER",
    field: "inner.nope",
    message: /resttest.v1.Inner has no field "nope"/,
  },
  {
    name: 'query parameter on a body "*" route',
    method: "POST",
    path: "/v1/items/i1:archive?name=x",
    status: 400,
    code: 3,
    reason: "UNKNOWN_QUERY_PARAMETER",
    field: "name",
    message: /takes every field from the body/,
  },
  {
    name: "query parameter for a path-bound field",
    method: "GET",
    path: "/v1/items/i1?id=x",
    status: 400,
    code: 3,
    reason: "UNKNOWN_QUERY_PARAMETER",
    field: "id",
    message: /the path already sets/,
  },
  {
    name: "query parameter inside the body field",
    method: "PATCH",
    path: "/v1/items/i1?inner.count=3",
    body: {},
    status: 400,
    code: 3,
    reason: "UNKNOWN_QUERY_PARAMETER",
    field: "inner.count",
    message: /the body already sets/,
  },
  {
    name: "not an integer",
    method: "GET",
    path: "/v1/params?int32Value=abc",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "int32Value",
    message: /"abc" is not an int32/,
  },
  {
    name: "int32 out of range",
    method: "GET",
    path: "/v1/params?int32_value=2147483648",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "int32_value",
    message: /not an int32/,
  },
  {
    name: "uint64 negative",
    method: "GET",
    path: "/v1/params?uint64Value=-1",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "uint64Value",
    message: /not an uint64/,
  },
  {
    name: "not a boolean",
    method: "GET",
    path: "/v1/params?boolValue=yes",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "boolValue",
    message: /not a boolean/,
  },
  {
    name: "unknown enum name",
    method: "GET",
    path: "/v1/params?color=PURPLE",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "color",
    message: /not a value of resttest.v1.Color \(COLOR_UNSPECIFIED, COLOR_RED, COLOR_BLUE\)/,
  },
  {
    name: "bad timestamp",
    method: "GET",
    path: "/v1/params?time=yesterday",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "time",
    message: /not a valid google.protobuf.Timestamp/,
  },
  {
    name: "bad duration",
    method: "GET",
    path: "/v1/params?duration=5m",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "duration",
    message: /not a valid google.protobuf.Duration/,
  },
  {
    name: "a message as a query parameter",
    method: "GET",
    path: "/v1/params?inner=x",
    status: 400,
    code: 3,
    reason: "UNKNOWN_QUERY_PARAMETER",
    field: "inner",
    message: /inner is a message; set its fields/,
  },
  {
    name: "a map as a query parameter",
    method: "GET",
    path: "/v1/params?labels=x",
    status: 400,
    code: 3,
    reason: "UNKNOWN_QUERY_PARAMETER",
    field: "labels",
    message: /map fields/,
  },
  {
    name: "a singular field twice",
    method: "GET",
    path: "/v1/params?id=a&id=b",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "id",
    message: /given more than once/,
  },
  {
    name: "both spellings of one field",
    method: "GET",
    path: "/v1/params?int32Value=1&int32_value=2",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "int32_value",
    message: /given more than once/,
  },
  {
    name: "a path variable of the wrong type",
    method: "GET",
    path: "/v1/leaves/l/seven",
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "inner.count",
    message: /path variable \{inner.count\}: "seven" is not an int32/,
  },
  {
    name: "malformed percent-encoding",
    method: "GET",
    path: "/v1/items/%zz",
    status: 400,
    code: 3,
    reason: "MALFORMED_PATH",
    message: /malformed percent-encoding/,
  },
  {
    name: "a wrong method on a known path",
    method: "POST",
    path: "/v1/items/i1",
    status: 405,
    code: 12,
    reason: "METHOD_NOT_ALLOWED",
    metadata: { allow: "DELETE, GET, PATCH, PUT" },
    message: /POST is not allowed on \/v1\/items\/i1/,
  },
  {
    name: "an encoded colon is not a verb separator",
    method: "POST",
    path: "/v1/items/i1%3Aarchive",
    status: 405,
    code: 12,
    reason: "METHOD_NOT_ALLOWED",
    metadata: { allow: "DELETE, GET, PATCH, PUT" },
    message: /not allowed/,
  },
  {
    name: "malformed JSON",
    method: "POST",
    path: "/v1/items/i1:archive",
    body: "{",
    status: 400,
    code: 3,
    reason: "MALFORMED_BODY",
    message: /not valid JSON/,
  },
  {
    name: 'a non-object body for body "*"',
    method: "POST",
    path: "/v1/items/i1:archive",
    body: "[1]",
    status: 400,
    code: 3,
    reason: "MALFORMED_BODY",
    message: /must be a JSON object/,
  },
  {
    name: "a body of the wrong type",
    method: "POST",
    path: "/v1/items/i1:archive",
    body: "{}",
    headers: { "content-type": "text/plain" },
    status: 415,
    code: 3,
    reason: "UNSUPPORTED_MEDIA_TYPE",
    message: /must be uncompressed application\/json, not text\/plain/,
  },
  {
    name: "a compressed body",
    method: "POST",
    path: "/v1/items/i1:archive",
    body: "{}",
    headers: { "content-type": "application/json", "content-encoding": "gzip" },
    status: 415,
    code: 3,
    reason: "UNSUPPORTED_MEDIA_TYPE",
    message: /\(gzip\)/,
  },
  {
    name: "a body on a route without one",
    method: "DELETE",
    path: "/v1/items/i1",
    body: { id: "x" },
    status: 400,
    code: 3,
    reason: "MALFORMED_BODY",
    message: /takes no request body/,
  },
  {
    name: "a body over the size limit",
    method: "POST",
    path: "/v1/items/i1:archive",
    body: { name: "x".repeat(MAX_BODY_BYTES) },
    status: 413,
    code: 8,
    reason: "BODY_TOO_LARGE",
    message: new RegExp(`exceeds ${MAX_BODY_BYTES} bytes`),
  },
  {
    name: "a body contradicting the path",
    method: "POST",
    path: "/v1/items/i1:archive",
    body: { id: "i2" },
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    field: "id",
    message: /the path says "i1" but the body says "i2"/,
  },
  {
    name: "an unknown field in the body",
    method: "POST",
    path: "/v1/items/i1:archive",
    body: { nope: 1 },
    status: 400,
    code: 3,
    // The invoker gives the decoder's refusal its reason, as the service's router does.
    reason: "UNKNOWN_FIELD",
    metadata: { field: "nope" },
    field: "nope",
    message: /^nope: is not a known field$/,
  },
  {
    name: "a wrongly typed field in the body",
    method: "PUT",
    path: "/v1/items/i1",
    body: { count: "many" },
    status: 400,
    code: 3,
    reason: "INVALID_FIELD",
    // The route's body is the request's `inner` field: the path is the body's.
    metadata: { field: "count" },
    field: "count",
    message: /^count: expected number/,
  },
  {
    name: "an unparsable deadline",
    method: "GET",
    path: "/v1/params",
    headers: { "grpc-timeout": "soon" },
    status: 400,
    code: 3,
    reason: "INVALID_HEADER",
    metadata: { header: "grpc-timeout" },
    message: /grpc-timeout: not a valid timeout/,
  },
];

describe("errors: google.rpc.Status JSON with the HTTP status of its code", () => {
  test.each(errors)(
    "$name → $status",
    async ({ method, path, body, headers, status, code, reason, metadata, field, message }) => {
      const reply = await call(method, path, { body, headers });
      expect(reply.status, reply.text).toBe(status);
      expect(reply.headers.get("content-type")).toBe("application/json");
      expect(reply.json.code).toBe(code);
      expect(reply.json.message).toMatch(message);
      expect(Array.isArray(reply.json.details)).toBe(true);
      if (reason) {
        expect(reply.json.details).toContainEqual({
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason,
          domain: "resttest.v1",
          ...(metadata ? { metadata } : {}),
        });
      }
      if (field) {
        expect(reply.json.details).toContainEqual({
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: [{ field, description: reply.json.message, reason }],
        });
      }
      // The transcoder still serves after any bad request.
      expect((await call("GET", "/v1/items/ok")).status).toBe(200);
    },
  );

  test("an HTTP/1.0 request without Host is refused, not crashed on", async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(server.port, "127.0.0.1", () => socket.end("GET /v1/items/x HTTP/1.0\r\n\r\n"));
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => {
        text += chunk;
      });
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(reply).toMatch(/^HTTP\/1.1 400/);
    expect(reply).toContain('"message":"a Host header is required"');
    expect(server.internalErrors).toEqual([]);
  });

  test("405 lists the allowed methods", async () => {
    const reply = await call("POST", "/v1/items/i1");
    expect(reply.headers.get("allow")).toBe("DELETE, GET, PATCH, PUT");
  });

  test("413 closes an HTTP/1 connection whose body was not read", async () => {
    const reply = await call("POST", "/v1/items/i1:archive", { body: "x".repeat(MAX_BODY_BYTES * 4) });
    expect(reply.status).toBe(413);
    expect(reply.headers.get("connection")).toBe("close");
  });

  test("an RPC error keeps its message and details, each as an Any with @type", async () => {
    const reply = await call("POST", "/v1/fail/5", { body: { message: "gone" } });
    expect(reply.status).toBe(404);
    expect(reply.headers.get("x-intercepted")).toBeNull();
    expect(reply.json).toEqual({
      code: 5,
      message: "gone",
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.ErrorInfo",
          reason: "TEST_FAILURE",
          domain: "resttest.v1",
          metadata: { k: "v" },
        },
        { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en", message: "localized" },
        { "@type": "type.googleapis.com/resttest.v1.RetryAdvice", attempts: 3 },
        // Not in any registered file: the bytes, base64.
        { "@type": "type.googleapis.com/resttest.v1.Item", value: "CgZkZXRhaWw=" },
      ],
    });
  });

  test("detail types passed to the transcoder are rendered as JSON", async () => {
    const other = await startEchoServer({ rest: { detailTypes: [invalid.ItemSchema] } });
    try {
      const reply = await call("POST", "/v1/fail/9", { body: { message: "x" }, base: other.url });
      expect(reply.json.details).toContainEqual({ "@type": "type.googleapis.com/resttest.v1.Item", id: "detail" });
    } finally {
      await other.close();
    }
  });

  // google/rpc/code.proto's HTTP mapping, as grpc-gateway, Envoy and Connect apply it.
  const httpStatusOfCode: Record<number, number> = {
    1: 499,
    2: 500,
    3: 400,
    4: 504,
    5: 404,
    6: 409,
    7: 403,
    8: 429,
    9: 400,
    10: 409,
    11: 400,
    12: 501,
    13: 500,
    14: 503,
    15: 500,
    16: 401,
  };
  test.each(Object.entries(httpStatusOfCode))("code %s → HTTP %s", async (code, status) => {
    const reply = await call("POST", `/v1/fail/${code}`, { body: { message: `failure ${code}` } });
    expect(reply.status).toBe(status);
    expect(reply.json).toMatchObject({ code: Number(code), message: `failure ${code}` });
  });
});

describe("server streaming: NDJSON, or SSE for Accept: text/event-stream", () => {
  const lines = (text: string) =>
    text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));

  test("NDJSON: one {result} per message", async () => {
    const reply = await call("GET", "/v1/items/w1:watch?int32Value=3");
    expect(reply.status).toBe(200);
    expect(reply.headers.get("content-type")).toBe("application/x-ndjson");
    expect(reply.headers.get("x-intercepted")).toBe("Watch");
    expect(lines(reply.text)).toEqual(
      [0, 1, 2].map((index) => ({ result: { params: { id: "w1" }, method: "Watch", ...(index ? { index } : {}) } })),
    );
  });

  test("NDJSON: an error after messages ends the stream as {error: Status}", async () => {
    const reply = await call("GET", "/v1/items/w1:watch?int32Value=2&failCode=14");
    expect(reply.status).toBe(200);
    const got = lines(reply.text);
    expect(got).toHaveLength(3);
    expect(got[2]).toEqual({
      error: {
        code: 14,
        message: "the stream failed",
        details: [
          { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "STREAM_FAILED", domain: "resttest.v1" },
        ],
      },
    });
  });

  test("an error before the first message gets its own HTTP status", async () => {
    const reply = await call("GET", "/v1/items/w1:watch?failCode=7");
    expect(reply.status).toBe(403);
    expect(reply.json).toMatchObject({ code: 7, message: "the stream failed" });
  });

  test("a stream without messages is an empty 200", async () => {
    const reply = await call("GET", "/v1/items/w1:watch");
    expect(reply.status).toBe(200);
    expect(reply.text).toBe("");
  });

  test("SSE: data events, then an error event", async () => {
    const reply = await call("GET", "/v1/items/w1:watch?int32Value=2&failCode=10", {
      headers: { accept: "text/event-stream" },
    });
    expect(reply.headers.get("content-type")).toBe("text/event-stream");
    expect(reply.headers.get("cache-control")).toBe("no-cache");
    const events = reply.text.split("\n\n").filter(Boolean);
    expect(events).toEqual([
      `data: ${JSON.stringify({ params: { id: "w1" }, method: "Watch" })}`,
      `data: ${JSON.stringify({ params: { id: "w1" }, method: "Watch", index: 1 })}`,
      `event: error\ndata: ${JSON.stringify({ code: 10, message: "the stream failed", details: [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "STREAM_FAILED", domain: "resttest.v1" }] })}`,
    ]);
  });

  test("SSE sends keep-alive comments while the stream is idle", async () => {
    const other = await startEchoServer({ rest: { sseHeartbeatMs: 40 } });
    try {
      const reply = await call("GET", "/v1/items/w1:watch?int32Value=2", {
        headers: { accept: "text/event-stream", "x-delay-ms": "200" },
        base: other.url,
      });
      expect(reply.text).toContain(": keep-alive\n\n");
      expect(reply.text.split("\n\n").filter((e) => e.startsWith("data: "))).toHaveLength(2);
    } finally {
      await other.close();
    }
  });

  test("a client hanging up mid-stream cancels the call; the server carries on", async () => {
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v1/items/w1:watch?int32Value=1000`, {
      headers: { "x-delay-ms": "20" },
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('"result"');
    controller.abort();
    await new Promise((r) => setTimeout(r, 100));
    expect((await call("GET", "/v1/items/after")).status).toBe(200);
    expect(server.internalErrors).toEqual([]);
  });
});

describe("classification: RPC protocols never reach the REST routes", () => {
  test("Connect, gRPC-web and the REST routes share the port", async () => {
    const web = createClient(EchoService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }));
    expect((await web.getItem({ id: "w" })).method).toBe("GetItem");
    expect((await client.getItem({ id: "c" })).method).toBe("GetItem");
  });

  test("a Connect call to an unknown procedure is UNIMPLEMENTED", async () => {
    const reply = await call("POST", "/resttest.v1.EchoService/Nope", {
      body: {},
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
    });
    // A path under a served service is answered by the server itself, listing the service's methods.
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({
      code: "unimplemented",
      message: expect.stringMatching(
        /^\/resttest.v1.EchoService\/Nope is not a procedure; resttest.v1.EchoService has Search, /,
      ),
      details: [expect.objectContaining({ type: "google.rpc.ErrorInfo" })],
    });
  });

  test("a Connect GET (?connect=v1) is not matched against REST routes", async () => {
    const reply = await call("GET", "/v1/params?connect=v1&encoding=json&message=%7B%7D");
    expect(reply.status).toBe(404);
    expect(reply.json.code).toBe("unimplemented");
  });

  test("a gRPC call to an unknown procedure is UNIMPLEMENTED in gRPC terms", async () => {
    const session = http2.connect(server.url);
    try {
      const { headers } = await h2Request(
        session,
        { ":method": "POST", ":path": "/v1/items/x", "content-type": "application/grpc", te: "trailers" },
        new Uint8Array(0),
      );
      expect(headers[":status"]).toBe(200);
      expect(headers["grpc-status"]).toBe("12");
    } finally {
      session.close();
    }
  });
});

describe("CORS", () => {
  const origin = "https://app.example.com";

  test("a preflight from an allowed origin is answered before routing, with REST's methods", async () => {
    const reply = await call("OPTIONS", "/v1/items/i1", {
      headers: { origin, "access-control-request-method": "PATCH", "access-control-request-headers": "authorization" },
    });
    expect(reply.status).toBe(204);
    expect(reply.headers.get("access-control-allow-origin")).toBe(origin);
    expect(reply.headers.get("access-control-allow-methods")).toBe("POST, GET, PUT, PATCH, DELETE");
    const allowed = (reply.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["authorization", "content-type", "connect-protocol-version", "x-grpc-web", "grpc-timeout"]) {
      expect(allowed).toContain(h);
    }
  });

  test("a preflight from another origin gets no allow headers", async () => {
    const reply = await call("OPTIONS", "/v1/items/i1", {
      headers: { origin: "https://evil.example.com", "access-control-request-method": "GET" },
    });
    expect(reply.status).toBe(204);
    expect(reply.headers.get("access-control-allow-origin")).toBeNull();
    expect(reply.headers.get("access-control-allow-methods")).toBeNull();
  });

  test("REST and Connect responses carry the CORS headers", async () => {
    const rest = await call("GET", "/v1/items/i1", { headers: { origin } });
    expect(rest.headers.get("access-control-allow-origin")).toBe(origin);
    expect(rest.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("grpc-status");
    const connect = await call("POST", "/resttest.v1.EchoService/GetItem", { body: { id: "x" }, headers: { origin } });
    expect(connect.status).toBe(200);
    expect(connect.headers.get("access-control-allow-origin")).toBe(origin);
    expect(connect.headers.get("vary")).toBe("Origin");
  });

  test("without CORS_ORIGINS no CORS headers are sent; a preflight is refused saying CORS_ORIGINS is unset", async () => {
    const other = await startEchoServer();
    try {
      const reply = await call("OPTIONS", "/v1/items/i1", {
        headers: { origin, "access-control-request-method": "GET" },
        base: other.url,
      });
      expect(reply.headers.get("access-control-allow-origin")).toBeNull();
      expect(reply.status).toBe(403);
      expect(reply.headers.get("x-cors-refused")).toBe("CORS_ORIGINS is unset");
      expect(reply.json.error).toContain(`CORS_ORIGINS is unset; set it to ${origin}`);
    } finally {
      await other.close();
    }
  });
});

describe("start-up: rules the transcoder cannot serve exactly are refused", () => {
  const cases = [
    {
      service: invalid.DuplicateRouteService,
      error:
        /GET \/v1\/dup\/\{name\} of resttest.v1.DuplicateRouteService.Second conflicts with GET \/v1\/dup\/\{id\} of resttest.v1.DuplicateRouteService.First/,
    },
    { service: invalid.UnknownFieldService, error: /path variable \{missing\}: resttest.v1.Item has no field missing/ },
    { service: invalid.RepeatedVariableService, error: /\{tags\} must be a singular scalar or enum field/ },
    { service: invalid.MessageVariableService, error: /\{child\} must be a singular scalar or enum field/ },
    { service: invalid.DoubleWildcardNotLastService, error: /`\*\*` must be the last segment/ },
    { service: invalid.MalformedTemplateService, error: /expected `\}`/ },
    { service: invalid.UnknownBodyService, error: /body: resttest.v1.Item has no field "nothing"/ },
    { service: invalid.UnknownResponseBodyService, error: /response_body: resttest.v1.Item has no field "nothing"/ },
    { service: invalid.BodyOnGetService, error: /a GET binding cannot take a body/ },
    { service: invalid.RepeatedVariableNameService, error: /variable \{id\} appears twice/ },
    { service: invalid.NestedBindingService, error: /may not nest/ },
    { service: invalid.ClientStreamService, error: /client-streaming RPCs cannot be served over REST/ },
    { service: invalid.RpcPathService, error: /is an RPC path/ },
    { service: invalid.NoLeadingSlashService, error: /must start with `\/`/ },
    { service: invalid.MultiSegmentIntService, error: /\{count\} spans several segments, so it must be a string/ },
  ];
  test.each(cases)("$service.typeName", ({ service, error }) => {
    const invoker = createInvoker([registration(service, {} as never)], {});
    const start = () => createRestTranscoder({ invoker, maxBodyBytes: 1024, errorDomain: "test" });
    expect(start).toThrow(HttpRuleError);
    expect(start).toThrow(error);
  });

  test("the echo service's routes are listed", () => {
    const invoker = createInvoker([registration(EchoService, {} as never)], {});
    const { routes: listed } = createRestTranscoder({ invoker, maxBodyBytes: 1024, errorDomain: "test" });
    expect(listed).toContain("GET /v1/{name=shelves/*/books/*} → resttest.v1.EchoService.GetItem");
    expect(listed).toContain("SEARCH /v1/items → resttest.v1.EchoService.Find");
    expect(listed).toHaveLength(16);
  });
});
