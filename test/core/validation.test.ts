import { Code, ConnectError } from "@connectrpc/connect";
import { errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  type AuditApi,
  apiProtocols,
  auditApi,
  connectApiError,
  type EventJson,
  failure,
} from "../support/audit-api.js";
import { clientFor } from "../support/clients.js";
import { expectError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";
import { grpcErrorDetails, grpcJsClient } from "../support/grpc-js-client.js";

const given = appFixture({ tenants: ["acme"] });

const event = (fields: EventJson = {}): EventJson => ({ action: "doc.edit", source: "invalid", ...fields });
const long = (n: number) => "x".repeat(n);
const hoursFromNow = (hours: number) => new Date(Date.now() + hours * 3600_000).toISOString();
/** `levels` objects inside one another, the innermost holding a number. */
const nested = (levels: number) => {
  let value: EventJson["attributes"] = { leaf: 1 };
  for (let i = 1; i < levels; i++) value = { child: value };
  return value;
};

type Call = (api: AuditApi) => Promise<unknown>;
const create =
  (e: EventJson | undefined): Call =>
  (api) =>
    api.create({ event: e });

/**
 * Each invalid request with the field paths its google.rpc.BadRequest must name, in order, and those of them that are
 * required and empty (MISSING_FIELD; every other is INVALID_FIELD, docs/errors.md).
 */
const invalid: [string, Call, string[], string[]?][] = [
  ["no event", create(undefined), ["event"], ["event"]],
  ["no action", create(event({ action: "" })), ["event.action"], ["event.action"]],
  ["id with a space", create(event({ id: "has space" })), ["event.id"]],
  ["id with a slash", create(event({ id: "a/b" })), ["event.id"]],
  ["id with non-ASCII letters", create(event({ id: "ünï" })), ["event.id"]],
  ["id of 129 characters", create(event({ id: long(129) })), ["event.id"]],
  ["parent_id with bad characters", create(event({ parentId: "parent#1" })), ["event.parent_id"]],
  ["action of 257 characters", create(event({ action: long(257) })), ["event.action"]],
  ["source of 257 characters", create(event({ source: long(257) })), ["event.source"]],
  ["category of 257 characters", create(event({ category: long(257) })), ["event.category"]],
  ["actor.id of 257 characters", create(event({ actor: { id: long(257) } })), ["event.actor.id"]],
  ["actor.type of 257 characters", create(event({ actor: { type: long(257) } })), ["event.actor.type"]],
  ["actor.name of 1025 characters", create(event({ actor: { name: long(1025) } })), ["event.actor.name"]],
  ["actor.email of 1025 characters", create(event({ actor: { email: long(1025) } })), ["event.actor.email"]],
  ["65 actor roles", create(event({ actor: { roles: Array(65).fill("r") } })), ["event.actor.roles"]],
  ["an actor role of 257 characters", create(event({ actor: { roles: ["ok", long(257)] } })), ["event.actor.roles[1]"]],
  ["target.id of 257 characters", create(event({ target: { id: long(257) } })), ["event.target.id"]],
  ["target.type of 257 characters", create(event({ target: { type: long(257) } })), ["event.target.type"]],
  ["target.name of 1025 characters", create(event({ target: { name: long(1025) } })), ["event.target.name"]],
  ["outcome.code of 257 characters", create(event({ outcome: { code: long(257) } })), ["event.outcome.code"]],
  [
    "outcome.message of 8193 characters",
    create(event({ outcome: { message: long(8193) } })),
    ["event.outcome.message"],
  ],
  ["unknown outcome status 7", create(event({ outcome: { status: 7 } })), ["event.outcome.status"]],
  ["request.ip of 257 characters", create(event({ request: { ip: long(257) } })), ["event.request.ip"]],
  ["request.method of 257 characters", create(event({ request: { method: long(257) } })), ["event.request.method"]],
  ["request.url of 8193 characters", create(event({ request: { url: long(8193) } })), ["event.request.url"]],
  [
    "request.user_agent of 1025 characters",
    create(event({ request: { userAgent: long(1025) } })),
    ["event.request.user_agent"],
  ],
  [
    "request.correlation_id of 257 characters",
    create(event({ request: { correlationId: long(257) } })),
    ["event.request.correlation_id"],
  ],
  [
    "request.session_id of 257 characters",
    create(event({ request: { sessionId: long(257) } })),
    ["event.request.session_id"],
  ],
  ["negative request.duration_ms", create(event({ request: { durationMs: -1 } })), ["event.request.duration_ms"]],
  ["NaN request.duration_ms", create(event({ request: { durationMs: "NaN" } })), ["event.request.duration_ms"]],
  ["occurred_at before 1970", create(event({ occurredAt: "1969-12-31T23:59:59.999999Z" })), ["event.occurred_at"]],
  ["occurred_at in year 1", create(event({ occurredAt: "0001-01-01T00:00:00Z" })), ["event.occurred_at"]],
  ["completed_at before 1970", create(event({ completedAt: "1960-01-01T00:00:00Z" })), ["event.completed_at"]],
  ["occurred_at 25 hours ahead", create(event({ occurredAt: hoursFromNow(25) })), ["event.occurred_at"]],
  ["completed_at 25 hours ahead", create(event({ completedAt: hoursFromNow(25) })), ["event.completed_at"]],
  [
    "completed_at before occurred_at",
    create(event({ occurredAt: "2024-01-01T00:00:00.000002Z", completedAt: "2024-01-01T00:00:00.000001Z" })),
    ["event.completed_at"],
  ],
  ["NUL in action", create(event({ action: "doc\u0000edit" })), ["event.action"]],
  ["NUL in actor.name", create(event({ actor: { name: "Ada\u0000" } })), ["event.actor.name"]],
  ["NUL in an actor role", create(event({ actor: { roles: ["\u0000"] } })), ["event.actor.roles[0]"]],
  ["NUL in target.id", create(event({ target: { id: "\u0000" } })), ["event.target.id"]],
  ["NUL in request.url", create(event({ request: { url: "/a\u0000b" } })), ["event.request.url"]],
  ["NUL in an attribute value", create(event({ attributes: { note: "a\u0000b" } })), ["event.attributes"]],
  ["NUL in a nested attribute key", create(event({ attributes: { a: [{ "k\u0000": 1 }] } })), ["event.attributes"]],
  ["attributes over 64 KiB", create(event({ attributes: { blob: long(65 * 1024) } })), ["event.attributes"]],
  ["attributes 17 levels deep", create(event({ attributes: nested(17) })), ["event.attributes"]],
  ["attributes 40 levels deep", create(event({ attributes: nested(40) })), ["event.attributes"]],
  [
    "every bad field at once",
    create(event({ id: "bad id", action: "", outcome: { status: 9 }, target: { name: long(1025) } })),
    ["event.id", "event.action", "event.target.name", "event.outcome.status"],
    ["event.action"],
  ],
  ["an empty batch", (api) => api.batchCreate({ events: [] }), ["events"], ["events"]],
  ["a batch of 1001", (api) => api.batchCreate({ events: Array.from({ length: 1001 }, () => event()) }), ["events"]],
  [
    "the fourth event of a batch without action",
    (api) => api.batchCreate({ events: [event(), event(), event(), event({ action: "" }), event()] }),
    ["events[3].action"],
    ["events[3].action"],
  ],
  [
    "several bad events in a batch",
    (api) =>
      api.batchCreate({
        events: [event(), event({ id: "no spaces" }), event(), event(), event({ occurredAt: hoursFromNow(48) })],
      }),
    ["events[1].id", "events[4].occurred_at"],
  ],
  [
    "a batch repeating an id",
    (api) => api.batchCreate({ events: [event({ id: "twice" }), event(), event({ id: "twice" })] }),
    ["events[2].id"],
  ],
  ["a tenant that is not a slug", (api) => api.create({ tenant: "Acme Corp", event: event() }), ["tenant"]],
  ["an empty action filter", (api) => api.list({ actions: [""] }), ["actions[0]"]],
  ["a bare * action filter", (api) => api.list({ actions: ["ok", "*"] }), ["actions[1]"]],
  ["* inside an action filter", (api) => api.list({ actions: ["a*b"] }), ["actions[0]"]],
  ["an action filter of 257 characters", (api) => api.list({ actions: [long(257)] }), ["actions[0]"]],
  ["NUL in an action filter", (api) => api.list({ actions: ["a\u0000"] }), ["actions[0]"]],
  ["51 action filters", (api) => api.list({ actions: Array.from({ length: 51 }, (_, i) => `a${i}`) }), ["actions"]],
  [
    "end_time equal to start_time",
    (api) => api.list({ startTime: "2024-01-01T00:00:00Z", endTime: "2024-01-01T00:00:00Z" }),
    ["end_time"],
  ],
  [
    "end_time before start_time",
    (api) => api.list({ startTime: "2024-01-02T00:00:00Z", endTime: "2024-01-01T00:00:00Z" }),
    ["end_time"],
  ],
  ["unknown order 7", (api) => api.list({ order: 7 }), ["order"]],
  ["unknown outcome 7", (api) => api.list({ outcome: 7 }), ["outcome"]],
  ["NUL in actor_id", (api) => api.list({ actorId: "a\u0000" }), ["actor_id"]],
  ["actor_name of 1025 characters", (api) => api.list({ actorName: long(1025) }), ["actor_name"]],
  [
    "NUL in target_type and source",
    (api) => api.list({ targetType: "\u0000", source: "\u0000" }),
    ["target_type", "source"],
  ],
];

/** Requests at the limits, which must be stored (ids made unique per protocol). */
const accepted = (protocol: string): [string, EventJson][] => [
  ["an id of 128 characters", event({ id: protocol.padEnd(128, "x") })],
  ["an id of every allowed character", event({ id: `AZaz09._:-${protocol}` })],
  ["an action of 256 characters", event({ action: long(256) })],
  ["64 roles", event({ actor: { roles: Array(64).fill("r") } })],
  ["occurred_at at the epoch", event({ occurredAt: "1970-01-01T00:00:00Z" })],
  ["occurred_at 23 hours ahead", event({ occurredAt: hoursFromNow(23) })],
  [
    "completed_at equal to occurred_at",
    event({ occurredAt: "2024-01-01T00:00:00Z", completedAt: "2024-01-01T00:00:00Z" }),
  ],
  ["attributes of 60 KiB", event({ attributes: { blob: long(60 * 1024) } })],
  ["attributes 16 levels deep", event({ attributes: nested(16) })],
  ["non-ASCII text", event({ action: "документ.правка", actor: { name: "Zoë 😀" }, attributes: { ключ: "値" } })],
];

describe.each(apiProtocols)("over %s", (protocol) => {
  let api: AuditApi;
  beforeAll(() => {
    api = auditApi(given.app, protocol, given.acme.readerWriter);
  });
  afterAll(() => api.close());

  test.each(invalid)("%s is INVALID_ARGUMENT naming the field", async (_name, call, fields, missing = []) => {
    const error = await failure(call(api));
    expect(error.code, error.message).toBe(Code.InvalidArgument);
    expect(error.violations.map((v) => [v.field, v.reason])).toEqual(
      fields.map((f) => [f, missing.includes(f) ? "MISSING_FIELD" : "INVALID_FIELD"]),
    );
    for (const violation of error.violations) expect(violation.description).not.toBe("");
    expect(error.domain).toBe("audit.v1");
    expect(error.reason).toBe(error.violations[0]?.reason);
    expect(error.metadata.field).toBe(fields[0]);
  });

  test.each(accepted(protocol))("%s is stored", async (_name, e) => {
    const { event: stored } = await api.create({ event: { ...e, source: `accepted/${protocol}` } });
    expect(stored).toMatchObject({ ...e, source: `accepted/${protocol}` });
  });

  test("a missing field is MISSING_FIELD, a bad one INVALID_FIELD", async () => {
    const error = await failure(api.batchCreate({ events: [event({ action: "" }), event({ id: "a b" })] }));
    expect(error.violations.map((v) => [v.field, v.reason])).toEqual([
      ["events[0].action", "MISSING_FIELD"],
      ["events[1].id", "INVALID_FIELD"],
    ]);
    expect(error.reason).toBe("MISSING_FIELD");
  });

  test("no invalid request stored anything", async () => {
    const { events } = await api.list({ source: "invalid", includeChildren: true });
    expect(events).toEqual([]);
  });
});

/**
 * Connect JSON bodies sent as raw text, for what a well-behaved client library refuses to produce: each with the
 * reason docs/errors.md gives it, the ErrorInfo metadata naming what was wrong, and a word of the message.
 */
test.each<[string, string | Uint8Array, string, Record<string, string>, string]>([
  [
    "a lone surrogate",
    '{"event":{"action":"a","category":"\\ud800"}}',
    "INVALID_FIELD",
    { field: "category", message: "audit.v1.AuditEvent" },
    "category",
  ],
  [
    "an unknown field",
    '{"event":{"action":"a","colour":"red"}}',
    "UNKNOWN_FIELD",
    { field: "colour", message: "audit.v1.AuditEvent" },
    "colour",
  ],
  [
    "a number where text belongs",
    '{"event":{"action":42}}',
    "INVALID_FIELD",
    { field: "action", message: "audit.v1.AuditEvent" },
    "action",
  ],
  [
    "an unknown enum name",
    '{"event":{"action":"a","outcome":{"status":"MAYBE"}}}',
    "INVALID_FIELD",
    { type: "audit.v1.OutcomeStatus" },
    "status",
  ],
  [
    "a malformed timestamp",
    '{"event":{"action":"a","occurredAt":"yesterday"}}',
    "INVALID_FIELD",
    { type: "google.protobuf.Timestamp" },
    "Timestamp",
  ],
  [
    "a timestamp after 9999",
    '{"event":{"action":"a","occurredAt":"10000-01-01T00:00:00Z"}}',
    "INVALID_FIELD",
    { type: "google.protobuf.Timestamp" },
    "Timestamp",
  ],
  ["a message where text belongs", '{"event":"x"}', "INVALID_FIELD", { type: "audit.v1.AuditEvent" }, "AuditEvent"],
  ["text that is not JSON", '{"event":', "MALFORMED_MESSAGE", {}, ""],
  ["a document that is not an object", "[]", "MALFORMED_MESSAGE", {}, "CreateRequest"],
  ["bytes that are not UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), "MALFORMED_MESSAGE", {}, "utf-8"],
])("Connect JSON with %s is INVALID_ARGUMENT", async (_name, body, reason, metadata, mentions) => {
  const res = await fetch(`${given.app.url}/audit.v1.AuditService/Create`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${given.acme.writer}` },
    body,
  });
  expect(res.status).toBe(400);
  const error = errorFromJsonBytes(new Uint8Array(await res.arrayBuffer()), undefined, new ConnectError(""));
  expect(error.code).toBe(Code.InvalidArgument);
  const info = error.findDetails(ErrorInfoSchema)[0];
  expect([info?.reason, info?.metadata]).toEqual([reason, metadata]);
  expect(error.rawMessage.toLowerCase()).toContain(mentions.toLowerCase());
});

/**
 * Timestamps JSON cannot express (after 9999, or with nanos out of range) can still arrive in binary. They are sent
 * here with the binary protocols' own clients.
 */
describe("timestamps only the binary encodings can carry", () => {
  const bad: [string, { seconds: bigint; nanos: number }][] = [
    ["year 10000", { seconds: 253402300800n, nanos: 0 }],
    ["negative nanos", { seconds: 1_700_000_000n, nanos: -1 }],
    ["nanos of a whole second", { seconds: 1_700_000_000n, nanos: 1_000_000_000 }],
    ["before year 1", { seconds: -62135596801n, nanos: 0 }],
  ];

  test.each(["connect-binary", "grpc-web"] as const)("are INVALID_ARGUMENT over %s", async (protocol) => {
    const client = clientFor(AuditService, given.app, protocol, given.acme.readerWriter);
    for (const [name, ts] of bad) {
      const onCreate = await connectApiError(
        client.create({ event: { action: "a", source: "invalid", completedAt: ts } }),
      );
      expect([onCreate.code, onCreate.violations.map((v) => v.field)], name).toEqual([
        Code.InvalidArgument,
        ["event.completed_at"],
      ]);
      const onList = await connectApiError(client.list({ startTime: ts }));
      expect([onList.code, onList.violations.map((v) => v.field)], name).toEqual([
        Code.InvalidArgument,
        ["start_time"],
      ]);
    }
  });

  test("are INVALID_ARGUMENT over grpc-js", async () => {
    const client = grpcJsClient(given.app.url, given.acme.readerWriter);
    try {
      for (const [name, { seconds, nanos }] of bad) {
        const ts = { seconds: String(seconds), nanos };
        const onCreate = await client.unary("AuditService", "Create", { event: { action: "a", occurredAt: ts } }).then(
          () => undefined,
          (e) => e,
        );
        expect(onCreate?.code, name).toBe(Code.InvalidArgument);
        expect(grpcErrorDetails(onCreate).badRequest?.fieldViolations.map((v) => v.field)).toEqual([
          "event.occurred_at",
        ]);
        const onList = await client.unary("AuditService", "List", { endTime: ts }).then(
          () => undefined,
          (e) => e,
        );
        expect(onList?.code, name).toBe(Code.InvalidArgument);
        expect(grpcErrorDetails(onList).badRequest?.fieldViolations.map((v) => v.field)).toEqual(["end_time"]);
      }
    } finally {
      client.close();
    }
  });
});

/** docs/errors.md: a required field left empty is MISSING_FIELD, whatever else its rule would say about the value. */
test.each(["connect", "grpc-web"] as const)(
  "a required id or password left empty is MISSING_FIELD over %s",
  async (protocol) => {
    const audit = clientFor(AuditService, given.app, protocol, given.acme.reader);
    await expectError(audit.getEvent({ id: "" }), {
      code: Code.InvalidArgument,
      reason: "MISSING_FIELD",
      fields: ["id"],
    });
    const admin = clientFor(AdminService, given.app, protocol, given.acme.admin);
    await expectError(admin.createUser({ username: `empty-password-${protocol}`, password: "" }), {
      code: Code.InvalidArgument,
      reason: "MISSING_FIELD",
      fields: ["password"],
    });
  },
);
