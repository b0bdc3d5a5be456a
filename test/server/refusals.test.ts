import { Code, ConnectError } from "@connectrpc/connect";
import { errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { clientFor } from "../support/clients.js";
import { expectError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";

// Refusals people meet first (issue 14, items 9, 10 and 13): each answered in the caller's protocol with a code, a
// reason and a message saying what to do, each naming fields as the caller wrote them, and each in the request log.
const given = appFixture({ tenants: ["acme"] });

const CREATE = "/audit.v1.AuditService/Create";

async function call(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await fetch(given.app.url + path, init);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { res, bytes, text: Buffer.from(bytes).toString("utf8") };
}

/** The Connect error in a non-200 response, which must be one (a JSON body with a string code). */
function connectError(reply: { res: Response; bytes: Uint8Array; text: string }) {
  expect(reply.res.headers.get("content-type"), reply.text).toBe("application/json");
  expect(typeof JSON.parse(reply.text).code, reply.text).toBe("string");
  const error = errorFromJsonBytes(reply.bytes, undefined, new ConnectError("not a Connect error"));
  return { code: error.code, message: error.rawMessage, info: error.findDetails(ErrorInfoSchema)[0] };
}

/** A log line by its message and a field, parsed. */
function logLine(msg: string, match: (line: Record<string, unknown>) => boolean) {
  for (const text of given.app.logs) {
    const line = JSON.parse(text) as Record<string, unknown>;
    if (line.msg === msg && match(line)) return line;
  }
  return undefined;
}

describe("Connect's own refusals on an RPC path (item 9)", () => {
  const auth = () => ({ authorization: `Bearer ${given.acme.writer}` });

  test("a wrong or missing content type is 415 with a Connect error naming what to send", async () => {
    for (const headers of [{ "content-type": "text/plain" }, {}] as Record<string, string>[]) {
      const reply = await call(CREATE, { method: "POST", headers: { ...auth(), ...headers }, body: "{}" });
      expect(reply.res.status).toBe(415);
      const error = connectError(reply);
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.info?.reason).toBe("UNSUPPORTED_MEDIA_TYPE");
      expect(error.message).toMatch(/must be application\/json or application\/proto .*application\/grpc/);
    }
  });

  test("a Connect GET on Create is 405 with Allow: POST; on List it is served", async () => {
    const get = await call(`${CREATE}?connect=v1&encoding=json&message=%7B%7D`);
    expect(get.res.status).toBe(405);
    expect(get.res.headers.get("allow")).toBe("POST");
    const error = connectError(get);
    expect(error.info?.reason).toBe("METHOD_NOT_ALLOWED");
    expect(error.message).toContain("use POST");
    const put = await call("/audit.v1.AuditService/List", {
      method: "PUT",
      headers: { ...auth(), "content-type": "application/json" },
      body: "{}",
    });
    expect([put.res.status, put.res.headers.get("allow")]).toEqual([405, "GET, POST"]);
  });

  test("an unknown method under a served service is a Connect UNIMPLEMENTED listing its methods, not REST's 404", async () => {
    const reply = await call("/audit.v1.AuditService/Nope", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(reply.res.status).toBe(404);
    const error = connectError(reply);
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.info?.reason).toBe("UNKNOWN_PROCEDURE");
    expect(error.message).toContain("Create, BatchCreate, Publish, List, Tail");
    // A gRPC caller gets it in gRPC's terms: status in the headers, details in grpc-status-details-bin.
    const grpc = await call("/audit.v1.AuditService/Nope", {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto" },
      body: new Uint8Array(5),
    });
    expect(grpc.res.status).toBe(200);
    const trailer = findTrailerError(grpc.res.headers);
    expect(trailer?.code).toBe(Code.Unimplemented);
    expect(trailer?.findDetails(ErrorInfoSchema)[0]?.reason).toBe("UNKNOWN_PROCEDURE");
  });

  test("malformed JSON, an unknown field and a mistyped one carry a reason and a hint", async () => {
    const post = (body: string) =>
      call(CREATE, { method: "POST", headers: { ...auth(), "content-type": "application/json" }, body });
    const broken = connectError(await post('{"event":'));
    expect([broken.code, broken.info?.reason]).toEqual([Code.InvalidArgument, "MALFORMED_MESSAGE"]);
    const unknown = connectError(await post('{"event": {"action": "a", "colour": 1}}'));
    expect([unknown.code, unknown.info?.reason, unknown.info?.metadata.field]).toEqual([
      Code.InvalidArgument,
      "UNKNOWN_FIELD",
      "colour",
    ]);
    expect(unknown.message).toContain('remove "colour" or correct its name');
    const mistyped = connectError(await post('{"event": {"action": 5}}'));
    expect([mistyped.info?.reason, mistyped.info?.metadata.field]).toEqual(["INVALID_FIELD", "action"]);
    // A real Connect client reads the same.
    const client = clientFor(AuditService, given.app, "grpc-web", given.acme.writer);
    await expectError(client.create({ event: { action: "" } }), {
      code: Code.InvalidArgument,
      reason: "MISSING_FIELD",
      fields: ["event.action"],
    });
  });

  test("REST: an unknown body field carries its reason in details, never an empty list", async () => {
    const reply = await call("/v1/tenants/acme/events", {
      method: "POST",
      headers: { ...auth(), "content-type": "application/json" },
      body: '{"action": "a", "colour": 1}',
    });
    expect(reply.res.status).toBe(400);
    // The ErrorInfo, and a BadRequest naming the field's path in the request (the transcoder locates decode faults).
    expect(JSON.parse(reply.text).details).toEqual([
      expect.objectContaining({ reason: "UNKNOWN_FIELD", metadata: expect.objectContaining({ field: "colour" }) }),
      expect.objectContaining({ fieldViolations: [expect.objectContaining({ field: "colour" })] }),
    ]);
  });
});

describe("messages name what the caller sent (item 10)", () => {
  const rest = async (path: string, init: { method?: string; body?: unknown; authorization?: string } = {}) => {
    const headers: Record<string, string> = {
      authorization: init.authorization ?? `Bearer ${given.acme.readerWriter}`,
    };
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const reply = await call(path, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    return { status: reply.res.status, headers: reply.res.headers, json: JSON.parse(reply.text || "null") };
  };
  const violations = (json: { details: { fieldViolations?: { field: string }[] }[] }) =>
    json.details.flatMap((d) => d.fieldViolations?.map((v) => v.field) ?? []);

  test("a REST create without action names `action`, the body's own field, not `event.action`", async () => {
    const reply = await rest("/v1/tenants/acme/events", { body: { actor: { id: "u1" } } });
    expect(reply.status).toBe(400);
    expect(reply.json.message).toBe("action: is required");
    expect(violations(reply.json)).toEqual(["action"]);
    expect(reply.json.details[0].metadata.field).toBe("action");
    const nested = await rest("/v1/tenants/acme/events", { body: { action: "a", occurredAt: "2999-01-01T00:00:00Z" } });
    expect(violations(nested.json)).toEqual(["occurredAt"]);
  });

  test("BatchCreate's paths stay rooted at the body, in JSON names", async () => {
    const reply = await rest("/v1/tenants/acme/events:batchCreate", {
      body: { events: [{ action: "a" }, { action: "" }] },
    });
    expect(reply.json.message).toBe("events[1].action: is required");
  });

  test("a bad pageSize query parameter is reported as pageSize, and page_size as page_size", async () => {
    for (const param of ["pageSize", "page_size"]) {
      const reply = await rest(`/v1/tenants/acme/events?${param}=5000`);
      expect(reply.status).toBe(400);
      expect(reply.json.message).toBe(`${param}: must be between 0 and 1000`);
      expect(violations(reply.json)).toEqual([param]);
    }
    // Connect callers keep the contract's names.
    const connect = clientFor(AuditService, given.app, "connect", given.acme.reader);
    await expectError(connect.list({ pageSize: 5000 }), { code: Code.InvalidArgument, fields: ["page_size"] });
  });

  test("`Authorization: Bearer ` with nothing after it is a missing credential", async () => {
    for (const authorization of ["Bearer ", "Bearer", "basic "]) {
      const reply = await rest("/v1/tenants/acme/events", { authorization });
      expect(reply.status, authorization).toBe(401);
      expect(reply.json.details[0].reason, authorization).toBe("MISSING_CREDENTIAL");
      expect(reply.json.message).toMatch(/carries no credential/);
    }
  });

  test("POST /healthz is 405 with Allow, not 404", async () => {
    for (const path of ["/healthz", "/readyz"]) {
      const reply = await call(path, { method: "POST" });
      expect([reply.res.status, reply.res.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    }
  });
});

test("without CORS_ORIGINS a browser's preflight is refused saying so, and logged once at WARN (item 11)", async () => {
  const preflight = () =>
    call(CREATE, {
      method: "OPTIONS",
      headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
    });
  for (const reply of [await preflight(), await preflight()]) {
    expect(reply.res.status).toBe(403);
    expect(reply.res.headers.get("access-control-allow-origin")).toBeNull();
    expect(JSON.parse(reply.text).error).toContain("CORS_ORIGINS is unset; set it to http://localhost:5173");
  }
  const warnings = given.app.logs.map((l) => JSON.parse(l)).filter((l) => l.level === 40 && /CORS_ORIGINS/.test(l.msg));
  expect(warnings).toHaveLength(1);
});

describe("the request log (item 13)", () => {
  test("timestamps are ISO 8601", () => {
    const line = JSON.parse(given.app.logs[0] as string);
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test("refusals by the RPC, REST and legacy layers each leave a line", async () => {
    await call("/v1/tenants/acme/events?colour=red", { headers: { authorization: `Bearer ${given.acme.reader}` } });
    await call("/v1/nothing/here");
    await call("/v1/tenants/acme/events", { method: "DELETE" });
    await call("/odata/Audits", { method: "GET" });
    await call(CREATE, { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" });
    const refused = (path: string, status: number) =>
      logLine("request refused", (l) => l.path === path && l.status === status);
    expect(refused("/v1/tenants/acme/events", 400)).toMatchObject({ reason: "UNKNOWN_QUERY_PARAMETER" });
    expect(refused("/v1/nothing/here", 404)).toMatchObject({ reason: "UNKNOWN_ROUTE", method: "GET" });
    expect(refused("/v1/tenants/acme/events", 405)).toMatchObject({ reason: "METHOD_NOT_ALLOWED" });
    expect(refused("/odata/Audits", 405)).toMatchObject({ adapter: expect.any(String) });
    expect(refused(CREATE, 415)).toMatchObject({ reason: "UNSUPPORTED_MEDIA_TYPE", requestId: expect.any(String) });
  });
});
