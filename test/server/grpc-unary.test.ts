import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  CreateRequestSchema,
  CreateResponseSchema,
  ListRequestSchema,
  ListResponseSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

/**
 * The direct unary gRPC path (src/server/grpc-unary.ts) must answer exactly as Connect's gRPC handler does. Two
 * instances on one database, one with the path and one without, get the same raw HTTP/2 requests; everything a
 * gRPC client reads (status, message, details, metadata, payload) must match.
 */
let database: TestDatabase;
let direct: TestApp;
let connect: TestApp;
let token: string;

beforeAll(async () => {
  database = await createTestDatabase();
  // Both instances must accept the same superadmin token: each start stores its own as the current one.
  const env = { MAX_BODY_BYTES: "65536", AUDIT_ADMIN_TOKEN: `at_test_${randomBytes(24).toString("base64url")}` };
  direct = await startTestApp({ database, env });
  connect = await startTestApp({ database, env: { ...env, GRPC_FAST_PATH: "false" } });
  ({ readerWriter: token } = await provisionTenant(direct, "fast"));
});
afterAll(async () => {
  await direct?.close();
  await connect?.close();
  await database?.drop();
});

interface Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function frame(message: Uint8Array, compressed = false): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

async function call(app: TestApp, method: string, body: Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  const session = http2.connect(app.url);
  try {
    return await new Promise<Reply>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": `/audit.v1.AuditService/${method}`,
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${token}`,
        ...headers,
      });
      const reply: Reply = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0) };
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        reply.status = Number(h[":status"]);
        reply.headers = h;
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      // The answer is complete with its trailers. Connect's own handler answers an oversized message without
      // reading the rest of the body, so its stream never closes: the reply cannot wait for "close".
      stream.on("trailers", (t) => {
        reply.trailers = t;
        resolve({ ...reply, body: Buffer.concat(chunks) });
      });
      stream.on("error", reject);
      stream.on("close", () => resolve({ ...reply, body: Buffer.concat(chunks) }));
      stream.end(body);
    });
  } finally {
    session.destroy();
  }
}

const message = <D extends DescMessage>(schema: D, init: MessageInitShape<D>) =>
  frame(toBinary(schema, create(schema, init)));

/** What a gRPC client sees of an answer, minus what differs between any two calls (request ids, times). */
function observed(reply: Reply) {
  const details = reply.trailers["grpc-status-details-bin"];
  const status = details ? fromBinary(StatusSchema, Buffer.from(String(details), "base64")) : undefined;
  return {
    http: reply.status,
    contentType: reply.headers["content-type"],
    grpcStatus: reply.trailers["grpc-status"] ?? reply.headers["grpc-status"],
    grpcMessage: reply.trailers["grpc-message"] ?? reply.headers["grpc-message"],
    details: status?.details.map((d) => d.typeUrl),
    requestId: typeof (reply.headers["x-request-id"] ?? reply.trailers["x-request-id"]),
  };
}

const cases: [string, "Create" | "List", () => Buffer][] = [
  ["a valid Create", "Create", () => message(CreateRequestSchema, { tenant: "fast", event: { action: "fast.one" } })],
  ["an invalid event", "Create", () => message(CreateRequestSchema, { tenant: "fast", event: { action: "" } })],
  ["another tenant", "Create", () => message(CreateRequestSchema, { tenant: "other", event: { action: "x" } })],
  ["a forged page token", "List", () => message(ListRequestSchema, { tenant: "fast", pageToken: "forged" })],
  ["an undecodable message", "Create", () => frame(Buffer.from([0xff, 0xff, 0xff]))],
  ["no message", "Create", () => Buffer.alloc(0)],
  ["a truncated envelope", "Create", () => frame(Buffer.alloc(10)).subarray(0, 8)],
  ["two messages", "List", () => Buffer.concat([message(ListRequestSchema, {}), message(ListRequestSchema, {})])],
  [
    "a message over MAX_BODY_BYTES",
    "Create",
    () => message(CreateRequestSchema, { event: { action: "x".repeat(70_000) } }),
  ],
  ["a compressed flag without grpc-encoding", "Create", () => frame(Buffer.alloc(3), true)],
];

test.each(cases)("%s: answered as Connect's handler answers it", async (_name, method, body) => {
  const [a, b] = await Promise.all([call(direct, method, body()), call(connect, method, body())]);
  expect(observed(a)).toEqual(observed(b));
});

test("the direct path answers uncompressed; Connect compresses what the client accepts", async () => {
  const list = message(ListRequestSchema, { tenant: "fast", pageSize: 50, includeChildren: true });
  const accept = { "grpc-accept-encoding": "gzip" };
  for (let i = 0; i < 10; i++) {
    await call(direct, "Create", message(CreateRequestSchema, { tenant: "fast", event: { action: `pad.${i}` } }));
  }
  const [a, b] = await Promise.all([call(direct, "List", list, accept), call(connect, "List", list, accept)]);
  expect(a.headers["grpc-encoding"]).toBeUndefined();
  expect(b.headers["grpc-encoding"]).toBe("gzip");
  const events = fromBinary(ListResponseSchema, a.body.subarray(5)).events;
  expect(events.length).toBeGreaterThan(10);
});

test("a compressed request takes Connect's path and is answered", async () => {
  const event = toBinary(CreateRequestSchema, create(CreateRequestSchema, { tenant: "fast", event: { action: "gz" } }));
  const reply = await call(direct, "Create", frame(gzipSync(event), true), { "grpc-encoding": "gzip" });
  expect(reply.trailers["grpc-status"]).toBe("0");
  const created = fromBinary(CreateResponseSchema, reply.body.subarray(5));
  expect(created.event?.action).toBe("gz");
});

test("a bad grpc-timeout is refused like Connect refuses it", async () => {
  const body = message(CreateRequestSchema, { tenant: "fast", event: { action: "t" } });
  const headers = { "grpc-timeout": "forever" };
  const [a, b] = await Promise.all([call(direct, "Create", body, headers), call(connect, "Create", body, headers)]);
  expect(observed(a)).toEqual(observed(b));
  expect(Number(observed(a).grpcStatus)).toBe(Code.InvalidArgument);
});

test("the interceptors run: the call is logged with its request id, and the stored event is the caller's", async () => {
  const reply = await call(direct, "Create", message(CreateRequestSchema, { event: { action: "logged" } }), {
    "x-request-id": "fast-path-call-1",
  });
  expect(reply.headers["x-request-id"]).toBe("fast-path-call-1");
  const created = fromBinary(CreateResponseSchema, reply.body.subarray(5));
  // The tenant was empty in the request: the auth interceptor filled in the credential's.
  expect(created.event?.tenant).toBe("fast");
  const line = direct.logs.find((l) => l.includes("fast-path-call-1"));
  expect(line && JSON.parse(line)).toMatchObject({ procedure: "Create", code: "ok" });
});

test("a call reset before its body ends is dropped, and the connection serves the next call", async () => {
  const session = http2.connect(direct.url);
  try {
    const half = session.request({
      ":method": "POST",
      ":path": "/audit.v1.AuditService/Create",
      "content-type": "application/grpc",
      authorization: `Bearer ${token}`,
    });
    half.write(message(CreateRequestSchema, { event: { action: "never.finished" } }).subarray(0, 8));
    await new Promise((r) => setTimeout(r, 50));
    half.close(http2.constants.NGHTTP2_CANCEL);
    const reply = await call(direct, "Create", message(CreateRequestSchema, { event: { action: "after.reset" } }));
    expect(reply.trailers["grpc-status"]).toBe("0");
    const errors = direct.logs.filter((l) => /"level":50/.test(l) && !l.includes("authentication"));
    expect(errors).toEqual([]);
  } finally {
    session.destroy();
  }
});
