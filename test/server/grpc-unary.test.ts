import { randomBytes } from "node:crypto";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import {
  create,
  createRegistry,
  type DescMessage,
  fromBinary,
  type JsonValue,
  type MessageInitShape,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, expect, test } from "vitest";
import {
  CreateRequestSchema,
  CreateResponseSchema,
  ListRequestSchema,
  ListResponseSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { h2Request, type RawH2Response } from "../support/h2.js";

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

type Reply = RawH2Response;

function frame(message: Uint8Array, compressed = false): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

async function call(
  app: TestApp,
  method: string,
  body: Buffer,
  headers: Record<string, string> = {},
  settings?: http2.Settings,
): Promise<Reply> {
  const session = http2.connect(app.url, { settings });
  try {
    const reply = await h2Request(
      session,
      {
        ":method": "POST",
        ":path": `/audit.v1.AuditService/${method}`,
        "content-type": "application/grpc",
        te: "trailers",
        authorization: `Bearer ${token}`,
        ...headers,
      },
      body,
      { untilTrailers: true },
    );
    if (reply.error) throw new Error(reply.error);
    return reply;
  } finally {
    session.destroy();
  }
}

const message = <D extends DescMessage>(schema: D, init: MessageInitShape<D>) =>
  frame(toBinary(schema, create(schema, init)));

const detailTypes = createRegistry(file_google_rpc_error_details);
const responseSchemas = { Create: CreateResponseSchema, List: ListResponseSchema };

/** Every message of a gRPC body, decoded; an envelope that does not decode is kept as its bytes. */
function messages(body: Buffer, schema: DescMessage): JsonValue[] {
  const found: JsonValue[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    const bytes = body.subarray(at + 5, at + 5 + length);
    try {
      found.push(body[at] === 0 ? toJson(schema, fromBinary(schema, bytes)) : { compressed: bytes.toString("base64") });
    } catch {
      found.push({ undecodable: bytes.toString("base64") });
    }
    at += 5 + length;
  }
  return found;
}

/**
 * Keys whose values differ between any two calls, at any depth: the event's id (a fresh UUIDv7 per call), its
 * sequence, times the server sets and page tokens. Cases send `occurredAt` themselves, so it is compared.
 */
const volatileKeys = new Set(["id", "sequence", "receivedAt", "expiresAt", "nextPageToken"]);
function withoutVolatile(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(withoutVolatile);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => !volatileKeys.has(key))
        .map(([key, v]) => [key, withoutVolatile(v as JsonValue)]),
    );
  }
  return value;
}

/**
 * What a gRPC client sees of an answer — status, message, every detail decoded, the decoded response messages and
 * the metadata — minus what differs between any two calls (ids, times, page tokens).
 */
function observed(reply: Reply, method: keyof typeof responseSchemas) {
  const details = reply.trailers["grpc-status-details-bin"];
  const status = details ? fromBinary(StatusSchema, Buffer.from(String(details), "base64")) : undefined;
  const requestId = reply.headers["x-request-id"] ?? reply.trailers["x-request-id"];
  return withoutVolatile({
    http: Number(reply.headers[":status"]),
    // A trailers-only answer carries its status in the one HEADERS frame.
    statusIn: reply.headers["grpc-status"] !== undefined ? "headers" : "trailers",
    contentType: reply.headers["content-type"] ?? null,
    grpcStatus: reply.trailers["grpc-status"] ?? reply.headers["grpc-status"] ?? null,
    grpcMessage: reply.trailers["grpc-message"] ?? reply.headers["grpc-message"] ?? null,
    status: status ? toJson(StatusSchema, status, { registry: detailTypes }) : null,
    messages: messages(reply.body, responseSchemas[method]),
    requestIdIsSet: typeof requestId === "string" && requestId.length > 0,
  });
}

/** An event with every field a client may set, so a field the direct path drops or alters shows. */
const fullEvent = {
  occurredAt: { seconds: 1_700_000_000n, nanos: 123_456_000 },
  completedAt: { seconds: 1_700_000_001n },
  source: "billing",
  action: "fast.full",
  category: "payments",
  actor: { id: "u-1", type: "user", name: "Ann", email: "ann@example.com", roles: ["payer", "admin"] },
  target: { id: "inv-7", type: "invoice", name: "Invoice 7" },
  outcome: { status: OutcomeStatus.FAILURE, code: "CARD_DECLINED", message: "declined" },
  request: {
    ip: "192.0.2.1",
    method: "POST",
    url: "/pay",
    userAgent: "test",
    durationMs: 12.5,
    correlationId: "c-1",
    sessionId: "s-1",
  },
  attributes: { amount: 12.5, currency: "EUR", nested: { ok: true, list: [1, "two", null] } },
  parentId: "parent-1",
};

const cases: [string, "Create" | "List", () => Buffer][] = [
  [
    "a valid Create",
    "Create",
    () => message(CreateRequestSchema, { tenant: "fast", event: { action: "fast.one", occurredAt: { seconds: 1n } } }),
  ],
  ["a Create with every field", "Create", () => message(CreateRequestSchema, { tenant: "fast", event: fullEvent })],
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
  expect(observed(a, method)).toEqual(observed(b, method));
});

test("a List of stored events with every field: answered as Connect's handler answers it", async () => {
  await call(
    direct,
    "Create",
    message(CreateRequestSchema, { tenant: "fast", event: { ...fullEvent, action: "full.listed" } }),
  );
  const list = message(ListRequestSchema, { tenant: "fast", pageSize: 5, includeChildren: true, actions: ["full.*"] });
  const [a, b] = await Promise.all([call(direct, "List", list), call(connect, "List", list)]);
  const seen = observed(a, "List");
  expect(seen).toEqual(observed(b, "List"));
  expect(seen).toMatchObject({ messages: [{ events: [{ action: "full.listed", parentId: "parent-1" }] }] });
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
  expect(observed(a, "Create")).toEqual(observed(b, "Create"));
  expect(Number(a.trailers["grpc-status"] ?? a.headers["grpc-status"])).toBe(Code.InvalidArgument);
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

/**
 * Runs `during` while a transaction holds tenant "fast"'s sequence row: every Create of that tenant, on either
 * instance, waits in its group commit until `during` has settled, so a call is certainly still running meanwhile.
 */
async function withCreatesHeld<T>(during: (calls: Promise<unknown>[]) => Promise<T>): Promise<T> {
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  try {
    await call(direct, "Create", message(CreateRequestSchema, { tenant: "fast", event: { action: "held.before" } }));
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const locked = new Promise<void>((resolve, reject) => {
      sql
        .begin(async (tx) => {
          await tx`select 1 from tenant_sequences where tenant = 'fast' for update`;
          resolve();
          await released;
        })
        .catch(reject);
    });
    await locked;
    const calls: Promise<unknown>[] = [];
    try {
      return await during(calls);
    } finally {
      release();
      await Promise.all(calls);
    }
  } finally {
    await sql.end();
  }
}

/** Resolves once the server's log has a line that `match` accepts. */
async function logged(app: TestApp, match: (line: string) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const line = app.logs.find(match);
    if (line) return JSON.parse(line);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error("no such log line");
}

test("a deadline that passes while the call waits for its commit: answered as Connect's handler answers it", async () => {
  const body = message(CreateRequestSchema, {
    tenant: "fast",
    event: { action: "held.deadline", occurredAt: { seconds: 1n } },
  });
  const [a, b] = await withCreatesHeld(async (calls) => {
    const both = Promise.all([
      call(direct, "Create", body, { "grpc-timeout": "50m" }),
      call(connect, "Create", body, { "grpc-timeout": "50m" }),
    ]);
    calls.push(both);
    // Past the deadline, with both calls waiting.
    await new Promise((r) => setTimeout(r, 300));
    // Wrapped: returned as it is, the answers would be awaited before the commits are let go.
    return { both };
  }).then(({ both }) => both);
  expect(observed(a, "Create")).toEqual(observed(b, "Create"));
});

test.each([
  ["CANCEL", http2.constants.NGHTTP2_CANCEL],
  ["INTERNAL_ERROR", http2.constants.NGHTTP2_INTERNAL_ERROR],
])(
  "a call its client resets (%s) while it runs: logged as Connect's path logs it, and the session serves on",
  async (name, code) => {
    const sessions = [http2.connect(direct.url), http2.connect(connect.url)];
    try {
      const body = message(CreateRequestSchema, { tenant: "fast", event: { action: "held.reset" } });
      const id = (i: number) => `reset-${name}-while-running-${i}`;
      await withCreatesHeld(async (calls) => {
        sessions.forEach((session, i) => {
          const stream = session.request({
            ":method": "POST",
            ":path": "/audit.v1.AuditService/Create",
            "content-type": "application/grpc",
            te: "trailers",
            authorization: `Bearer ${token}`,
            "x-request-id": id(i),
          });
          stream.on("error", () => {});
          stream.end(body);
          calls.push(new Promise((resolve) => stream.on("close", resolve)));
          setTimeout(() => stream.close(code), 300);
        });
        await new Promise((r) => setTimeout(r, 600));
      });
      const lines = await Promise.all([direct, connect].map((app, i) => logged(app, (l) => l.includes(`"${id(i)}"`))));
      expect(lines[0]?.code).toBe(lines[1]?.code);
      const next = await h2Request(
        sessions[0] as http2.ClientHttp2Session,
        {
          ":method": "POST",
          ":path": "/audit.v1.AuditService/Create",
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${token}`,
        },
        message(CreateRequestSchema, { tenant: "fast", event: { action: "after.reset" } }),
      );
      expect(next.trailers["grpc-status"]).toBe("0");
      const errors = direct.logs.filter((l) => /"level":50/.test(l) && !l.includes("authentication"));
      expect(errors).toEqual([]);
    } finally {
      for (const session of sessions) session.destroy();
    }
  },
);

test("a response many times the client's flow-control window: answered as Connect's handler answers it", async () => {
  const padding = "p".repeat(3000);
  for (let i = 0; i < 40; i++) {
    await call(
      direct,
      "Create",
      message(CreateRequestSchema, { tenant: "fast", event: { action: "big.page", attributes: { padding, i } } }),
    );
  }
  const list = message(ListRequestSchema, { tenant: "fast", pageSize: 40, actions: ["big.page"] });
  // A 4 KiB window per stream: the server sends a 120 KiB answer in thirty-odd WINDOW_UPDATE-paced rounds.
  const window = { initialWindowSize: 4096 };
  const [a, b] = await Promise.all([call(direct, "List", list, {}, window), call(connect, "List", list, {}, window)]);
  expect(a.body.length).toBeGreaterThan(30 * 4096);
  const seen = observed(a, "List");
  expect(seen).toEqual(observed(b, "List"));
  expect(seen).toMatchObject({ grpcStatus: "0", messages: [{ events: Array(40).fill({ action: "big.page" }) }] });
});
