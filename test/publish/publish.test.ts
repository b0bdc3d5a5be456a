import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, AttributeType } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import type { AuditEvent } from "../../gen/audit/v1/event_pb.js";
import { reasonOf } from "../../src/errors.js";
import { timestampMicros } from "../../src/store/time.js";
import { clientFor, type Protocol, protocols, provisionTenant, type TenantTokens } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { expectError, failureOf, grpcServiceError } from "../support/errors.js";
import { appFixture } from "../support/fixture.js";
import { type GrpcJsClient, grpcErrorDetails, grpcJsClient } from "../support/grpc-js-client.js";

const clock = new ManualClock();
let acme: TenantTokens;
let grpcs: GrpcJsClient;
let audit: Client<typeof AuditService>;

/** A tenant with two templates: one with an attribute of each type and a default TTL, one bare. */
async function setUpTenant(tenant: string) {
  const tokens = await provisionTenant(given.app, tenant);
  const admin = clientFor(AdminService, given.app, "connect", tokens.admin);
  await admin.createEventTemplate({
    template: {
      name: "job.finished",
      description: "A job ended",
      attributes: [
        { name: "host", type: AttributeType.STRING, required: true },
        { name: "exit_code", type: AttributeType.INTEGER, required: true },
        { name: "duration", type: AttributeType.FLOAT },
        { name: "ok", type: AttributeType.BOOLEAN },
        { name: "started_at", type: AttributeType.TIMESTAMP },
      ],
      defaultTtlMinutes: 60n,
    },
  });
  await admin.createEventTemplate({ template: { name: "heartbeat" } });
  return { tokens, admin, audit: clientFor(AuditService, given.app, "connect", tokens.readerWriter) };
}

const given = appFixture({ clock });
beforeAll(async () => {
  const set = await setUpTenant("acme");
  acme = set.tokens;
  audit = set.audit;
  grpcs = grpcJsClient(given.app.url, acme.writer);
});
afterAll(async () => {
  grpcs?.close();
});

interface Case {
  name: string;
  eventName: string;
  attributes?: [string, string][];
  ttlMinutes?: number;
  code: Code;
  reason: string;
  message: string;
  field: string;
}

const required: [string, string][] = [
  ["host", "web-1"],
  ["exit_code", "0"],
];

const cases: Case[] = [
  {
    name: "event_name missing",
    eventName: "",
    code: Code.InvalidArgument,
    reason: "MISSING_FIELD",
    message: "event_name: is required",
    field: "event_name",
  },
  {
    name: "template not found",
    eventName: "job.unknown",
    code: Code.NotFound,
    reason: "TEMPLATE_NOT_FOUND",
    message: 'Universal Event Template "job.unknown" not found.',
    field: "",
  },
  {
    name: "a name no template can have",
    eventName: "a/b",
    code: Code.NotFound,
    reason: "TEMPLATE_NOT_FOUND",
    message: 'Universal Event Template "a/b" not found.',
    field: "",
  },
  {
    name: "negative TTL",
    eventName: "job.finished",
    attributes: required,
    ttlMinutes: -1,
    code: Code.InvalidArgument,
    reason: "INVALID_TTL",
    message: "Invalid Time To Live. Value must be non-negative or empty.",
    field: "ttl_minutes",
  },
  {
    name: "TTL beyond 100 years",
    eventName: "job.finished",
    attributes: required,
    ttlMinutes: 52_560_001,
    code: Code.InvalidArgument,
    reason: "INVALID_TTL",
    message: "Invalid Time To Live. Value must be at most 52560000 minutes.",
    field: "ttl_minutes",
  },
  {
    name: "attributes for a template without any",
    eventName: "heartbeat",
    attributes: [["host", "web-1"]],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTES_UNKNOWN",
    message: 'Universal Event attributes unknown for Universal Event Template "heartbeat".',
    field: "attributes",
  },
  {
    name: "attribute without a name",
    eventName: "job.finished",
    attributes: [...required, ["", "x"]],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_NAME_REQUIRED",
    message: "Universal Event attribute name required.",
    field: "attributes[2].name",
  },
  {
    name: "attribute twice",
    eventName: "job.finished",
    attributes: [...required, ["host", "web-2"]],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_DUPLICATED",
    message: 'Universal Event attribute "host" duplicated.',
    field: "attributes[2].name",
  },
  {
    name: "attribute not in the template",
    eventName: "job.finished",
    attributes: [["colour", "red"], ...required],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_UNKNOWN",
    message: 'Universal Event attribute "colour" unknown for Universal Event Template "job.finished".',
    field: "attributes[0].name",
  },
  {
    name: "invalid integer",
    eventName: "job.finished",
    attributes: [
      ["host", "web-1"],
      ["exit_code", "12a"],
    ],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_INVALID_VALUE",
    message: 'Universal Event attribute value "12a" for attribute "exit_code" is not a valid integer.',
    field: "attributes[1].value",
  },
  {
    name: "invalid float",
    eventName: "job.finished",
    attributes: [...required, ["duration", "fast"]],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_INVALID_VALUE",
    message: 'Universal Event attribute value "fast" for attribute "duration" is not a valid float.',
    field: "attributes[2].value",
  },
  {
    name: "invalid boolean",
    eventName: "job.finished",
    attributes: [...required, ["ok", "yes"]],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_INVALID_VALUE",
    message: 'Universal Event attribute value "yes" for attribute "ok" is not a valid boolean.',
    field: "attributes[2].value",
  },
  {
    name: "invalid timestamp",
    eventName: "job.finished",
    attributes: [...required, ["started_at", "2026-02-30T00:00:00Z"]],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_INVALID_VALUE",
    message:
      'Universal Event attribute value "2026-02-30T00:00:00Z" for attribute "started_at" is not a valid timestamp.',
    field: "attributes[2].value",
  },
  {
    name: "required attribute missing",
    eventName: "job.finished",
    attributes: [["exit_code", "1"]],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_REQUIRED",
    message: 'Universal Event attribute "host" required for Universal Event Template "job.finished".',
    field: "attributes",
  },
  {
    name: "required attribute given empty",
    eventName: "job.finished",
    attributes: [
      ["host", ""],
      ["exit_code", "1"],
    ],
    code: Code.InvalidArgument,
    reason: "ATTRIBUTE_REQUIRED",
    message: 'Universal Event attribute "host" required for Universal Event Template "job.finished".',
    field: "attributes",
  },
];

describe("every Publish error, with its reason and exact message", () => {
  describe.each(protocols)("%s", (protocol: Protocol) => {
    test.each(cases)("$name", async (c) => {
      const client = clientFor(AuditService, given.app, protocol, acme.writer);
      const error = await client
        .publish({
          eventName: c.eventName,
          attributes: (c.attributes ?? []).map(([name, value]) => ({ name, value })),
          ttlMinutes: c.ttlMinutes === undefined ? undefined : BigInt(c.ttlMinutes),
        })
        .then(() => undefined, ConnectError.from);
      expect(error?.code).toBe(c.code);
      expect(error?.rawMessage).toBe(c.message);
      expect(error && reasonOf(error)).toBe(c.reason);
    });
  });

  test.each(cases)("grpc-js: $name", async (c) => {
    const error = await failureOf(
      grpcs.unary("AuditService", "Publish", {
        eventName: c.eventName,
        attributes: (c.attributes ?? []).map(([name, value]) => ({ name, value })),
        ...(c.ttlMinutes === undefined ? {} : { ttlMinutes: String(c.ttlMinutes) }),
      }),
      "an error",
      grpcServiceError,
    );
    expect(error?.code).toBe(c.code);
    const status = error && grpcErrorDetails(error);
    expect(status?.message).toBe(c.message);
    // Connect-ES percent-encodes grpc-message with encodeURIComponent and grpc-js decodes it with decodeURI, which
    // leaves reserved characters (":", "/") encoded; the Status detail above carries the message exactly.
    expect(decodeURIComponent(error?.details ?? "")).toBe(c.message);
    const info = status?.errorInfo;
    expect(info?.reason).toBe(c.reason);
    expect(info?.domain).toBe("audit.v1");
    if (c.field) expect(info?.metadata.field).toBe(c.field);
  });

  test("a huge value is quoted cut short, so the message still fits a header", async () => {
    const value = "9".repeat(100_000);
    const error = await audit
      .publish({
        tenant: "acme",
        eventName: "job.finished",
        attributes: [...toAttributes(required), { name: "ok", value }],
      })
      .then(() => undefined, ConnectError.from);
    expect(error?.rawMessage).toBe(
      `Universal Event attribute value "${"9".repeat(256)}…" for attribute "ok" is not a valid boolean.`,
    );
  });

  test("other fields are checked like Create's", async () => {
    const error = await audit
      .publish({ eventName: "heartbeat", actor: { id: "x".repeat(300) }, parentId: "bad id" })
      .then(() => undefined, ConnectError.from);
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toContain("actor.id: must be at most 256 characters");
    expect(error?.rawMessage).toContain("parent_id: must be 1-128 characters");
  });

  test("nothing is stored by a refused Publish", async () => {
    const { events } = await audit.list({ eventName: "job.finished", includeChildren: true });
    expect(events).toEqual([]);
  });
});

function toAttributes(pairs: [string, string][]) {
  return pairs.map(([name, value]) => ({ name, value }));
}

const minutesBetween = (from: AuditEvent["receivedAt"], to: AuditEvent["expiresAt"]) =>
  from && to ? Number(timestampMicros(to) - timestampMicros(from)) / 60_000_000 : undefined;

describe("a published event", () => {
  test("stores typed attributes, the event name as action and category universal_event", async () => {
    const { event } = await audit.publish({
      eventName: "job.finished",
      attributes: toAttributes([
        ["host", "web-1"],
        ["exit_code", "-42"],
        ["duration", "1.5e3"],
        ["ok", "TRUE"],
        ["started_at", "2026-01-02T03:04:05.123+02:00"],
      ]),
      actor: { id: "scheduler", type: "service" },
      source: "uc-1",
      target: { id: "job-7", type: "Job" },
    });
    expect(event?.action).toBe("job.finished");
    expect(event?.category).toBe("universal_event");
    expect(event?.attributes).toEqual({
      host: "web-1",
      exit_code: -42,
      duration: 1500,
      ok: true,
      started_at: "2026-01-02T01:04:05.123Z",
    });
    expect(event?.actor?.id).toBe("scheduler");
    expect(event?.source).toBe("uc-1");
    expect(event?.target?.id).toBe("job-7");
    expect(event?.occurredAt).toEqual(event?.receivedAt);
    const { events } = await audit.list({ eventName: "job.finished" });
    expect(events.find((e) => e.id === event?.id)?.attributes).toEqual(event?.attributes);
  });

  test("keeps an integer beyond 2^53 exact, as a decimal string", async () => {
    const { event } = await audit.publish({
      eventName: "job.finished",
      attributes: toAttributes([
        ["host", "web-1"],
        ["exit_code", "9007199254740993"],
      ]),
    });
    expect(event?.attributes?.exit_code).toBe("9007199254740993");
  });

  test("over gRPC, returns the stored event", async () => {
    const response = await grpcs.unary("AuditService", "Publish", {
      eventName: "job.finished",
      attributes: toAttributes([
        ["host", "web-2"],
        ["exit_code", "3"],
        ["ok", "false"],
      ]),
      ttlMinutes: "5",
    });
    expect(response.event.action).toBe("job.finished");
    expect(response.event.category).toBe("universal_event");
    expect(response.event.attributes.fields.exit_code).toMatchObject({ numberValue: 3 });
    expect(response.event.attributes.fields.ok).toMatchObject({ boolValue: false });
    expect(Number(response.event.expiresAt.seconds) - Number(response.event.receivedAt.seconds)).toBe(300);
  });

  test("with the same id twice is stored once; with other content it is refused", async () => {
    const request = { eventName: "heartbeat", id: "beat-1" };
    const first = await audit.publish(request);
    const again = await audit.publish(request);
    expect(again.event?.sequence).toBe(first.event?.sequence);
    const error = await audit.publish({ ...request, source: "elsewhere" }).then(() => undefined, ConnectError.from);
    expect(error?.code).toBe(Code.AlreadyExists);
  });
});

describe("TTL", () => {
  const ttlOf = async (eventName: string, ttlMinutes?: bigint) => {
    const attributes = eventName === "job.finished" ? toAttributes(required) : [];
    const { event } = await audit.publish({ eventName, attributes, ttlMinutes });
    return minutesBetween(event?.receivedAt, event?.expiresAt);
  };

  test("absent or 0 falls back to the template default", async () => {
    expect(await ttlOf("job.finished")).toBe(60);
    expect(await ttlOf("job.finished", 0n)).toBe(60);
  });

  test("a given TTL wins over the default", async () => {
    expect(await ttlOf("job.finished", 5n)).toBe(5);
    expect(await ttlOf("heartbeat", 3n)).toBe(3);
  });

  test("no TTL and no default: the event never expires", async () => {
    expect(await ttlOf("heartbeat")).toBeUndefined();
    expect(await ttlOf("heartbeat", 0n)).toBeUndefined();
  });
});

describe("List", () => {
  test("active_only leaves out expired events; event_name keeps only that template's events", async () => {
    const { audit } = await setUpTenant("list-filters");
    const expiring = (await audit.publish({ eventName: "heartbeat", ttlMinutes: 1n })).event;
    const lasting = (await audit.publish({ eventName: "heartbeat" })).event;
    const job = (await audit.publish({ eventName: "job.finished", attributes: toAttributes(required) })).event;
    // Same action, but created rather than published.
    const created = (await audit.create({ event: { action: "heartbeat" } })).event;
    clock.advanceHours(2 / 60);
    try {
      const ids = async (filters: { activeOnly?: boolean; eventName?: string }) =>
        (await audit.list(filters)).events.map((e) => e.id).sort();
      expect(await ids({})).toEqual([expiring, lasting, job, created].map((e) => e?.id).sort());
      expect(await ids({ activeOnly: true })).toEqual([lasting, job, created].map((e) => e?.id).sort());
      expect(await ids({ eventName: "heartbeat" })).toEqual([expiring, lasting].map((e) => e?.id).sort());
      expect(await ids({ eventName: "heartbeat", activeOnly: true })).toEqual([lasting?.id]);
    } finally {
      clock.advanceHours(-2 / 60);
    }
  });
});

describe("deleting a template", () => {
  test("leaves the events published with it intact, and Publish then finds no template", async () => {
    const { audit, admin } = await setUpTenant("deleting");
    const attributes = toAttributes([...required, ["ok", "true"]]);
    const { event } = await audit.publish({ eventName: "job.finished", attributes });
    await admin.deleteEventTemplate({ name: "job.finished" });
    const { events } = await audit.list({ eventName: "job.finished" });
    expect(events).toHaveLength(1);
    expect(events[0]?.attributes).toEqual({ host: "web-1", exit_code: 0, ok: true });
    expect(events[0]?.expiresAt).toEqual(event?.expiresAt);
    const error = await audit
      .publish({ eventName: "job.finished", attributes })
      .then(() => undefined, ConnectError.from);
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.rawMessage).toBe('Universal Event Template "job.finished" not found.');
  });
});

describe("roles", () => {
  test("Publish needs the writer role, in the caller's own tenant", async () => {
    const asReader = clientFor(AuditService, given.app, "connect", acme.reader);
    await expectError(asReader.publish({ eventName: "heartbeat" }), {
      code: Code.PermissionDenied,
      reason: "INSUFFICIENT_ROLE",
    });
    await provisionTenant(given.app, "elsewhere");
    await expectError(audit.publish({ tenant: "elsewhere", eventName: "heartbeat" }), {
      code: Code.PermissionDenied,
      reason: "TENANT_MISMATCH",
    });
    await expectError(clientFor(AuditService, given.app, "connect").publish({ eventName: "heartbeat" }), {
      code: Code.Unauthenticated,
      reason: "MISSING_CREDENTIAL",
    });
  });
});
