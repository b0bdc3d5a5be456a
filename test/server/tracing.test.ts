import { randomBytes } from "node:crypto";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { startTestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";
import { legacyCalls } from "../support/legacy-calls.js";

/** A fresh W3C trace context, as a caller's tracer would send it. */
function traceparent() {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` };
}

const exporter = new InMemorySpanExporter();
const given = appFixture({ spanExporter: exporter, tenants: ["acme"] });

const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const server = (spans: ReadableSpan[], name: string) =>
  spans.find((s) => s.name === name && s.kind === SpanKind.SERVER) as ReadableSpan;

describe("a call with a traceparent gets a server span under that parent, and child spans for its database work", () => {
  const create = "audit.v1.AuditService/Create";
  const event = { action: "traced.create" };

  test.each(["connect", "grpc-web", "grpc"] as const)("Create over %s", async (protocol) => {
    const parent = traceparent();
    const client = clientFor(AuditService, given.app, protocol, given.acme.writer);
    const { event: stored } = await client.create({ event }, { headers: { traceparent: parent.header } });
    const spans = spansOf(parent.traceId);
    const call = server(spans, create);
    expect(call.parentSpanContext?.spanId).toBe(parent.spanId);
    expect(call.attributes).toMatchObject({ "rpc.service": "audit.v1.AuditService", "rpc.method": "Create" });
    const wait = spans.find((s) => s.name === "GroupCommit.wait");
    expect(wait?.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
    // This call was alone, so its wait started the flush: the append transaction is its child.
    const append = spans.find((s) => s.name === "EventStore.append");
    expect(append?.parentSpanContext?.spanId).toBe(wait?.spanContext().spanId);
    expect(append?.attributes).toMatchObject({ "db.system": "postgresql", "audit.events": 1 });
    // The client gave no correlation id: the trace's is stored.
    expect(stored?.request?.correlationId).toBe(parent.traceId);
  });

  test("Create over REST, and List's query", async () => {
    const parent = traceparent();
    const res = await fetch(`${given.app.url}/v1/tenants/acme/events`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${given.acme.writer}`,
        "content-type": "application/json",
        traceparent: parent.header,
      },
      body: JSON.stringify({ ...event, request: { correlationId: "client-chosen" } }),
    });
    expect(res.status).toBe(200);
    // A correlation id the client chose is kept.
    expect(((await res.json()) as { event: { request: unknown } }).event.request).toEqual({
      correlationId: "client-chosen",
    });
    const call = server(spansOf(parent.traceId), create);
    expect(call.parentSpanContext?.spanId).toBe(parent.spanId);
    expect(call.attributes["audit.protocol"]).toBe("rest");

    const listing = traceparent();
    await clientFor(AuditService, given.app, "grpc", given.acme.reader).list(
      {},
      { headers: { traceparent: listing.header } },
    );
    const spans = spansOf(listing.traceId);
    const list = server(spans, "audit.v1.AuditService/List");
    expect(list.parentSpanContext?.spanId).toBe(listing.spanId);
    expect(spans.find((s) => s.name === "EventStore.list")?.parentSpanContext?.spanId).toBe(list.spanContext().spanId);
  });

  test("every legacy API: the route's one call is a child of the HTTP request's parent", async () => {
    for (const { api, send } of await legacyCalls(given.app, given.acme)) {
      const parent = traceparent();
      const res = await send({ traceparent: parent.header });
      expect(res.status, api).toBeLessThan(300);
      const calls = spansOf(parent.traceId).filter((s) => s.kind === SpanKind.SERVER);
      // The route authenticated the HTTP request itself: no GetCaller, only the call that does the work.
      expect(calls.length, api).toBe(1);
      for (const call of calls) {
        expect(call.parentSpanContext?.spanId, `${api} ${call.name}`).toBe(parent.spanId);
        expect(call.attributes["audit.protocol"], `${api} ${call.name}`).toBe(api);
      }
    }
  });

  test("Frontier's REST route, and Tail's reads", async () => {
    const parent = traceparent();
    const res = await fetch(`${given.app.url}/v1beta1/organizations/acme/auditlogs`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${given.acme.writer}`,
        "content-type": "application/json",
        traceparent: parent.header,
      },
      body: JSON.stringify({ logs: [{ source: "frontier", action: "traced.frontier" }] }),
    });
    expect(res.status).toBe(200);
    const frontier = server(
      spansOf(parent.traceId),
      "raystack.frontier.v1beta1.FrontierService/CreateOrganizationAuditLogs",
    );
    expect(frontier.parentSpanContext?.spanId).toBe(parent.spanId);
    expect(frontier.attributes["audit.protocol"]).toBe("rest");

    const tailing = traceparent();
    const reader = clientFor(AuditService, given.app, "grpc", given.acme.reader);
    const abort = new AbortController();
    const stream = reader.tail(
      { afterSequence: 0n },
      { headers: { traceparent: tailing.header }, signal: abort.signal },
    );
    await stream[Symbol.asyncIterator]().next();
    abort.abort();
    // The span ends once the server has seen the client leave.
    const tail = await (async () => {
      for (let i = 0; i < 200; i++) {
        const found = spansOf(tailing.traceId).find((s) => s.name === "audit.v1.AuditService/Tail");
        if (found) return found;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error("the Tail span never ended");
    })();
    expect(tail.parentSpanContext?.spanId).toBe(tailing.spanId);
    const range = spansOf(tailing.traceId).find((s) => s.name === "EventStore.range");
    expect(range?.parentSpanContext?.spanId).toBe(tail.spanContext().spanId);
  });
});

test("the request log line carries the trace id; a call without a traceparent starts a trace of its own", async () => {
  const parent = traceparent();
  await clientFor(AuditService, given.app, "connect", given.acme.writer).create(
    { event: { action: "logged" } },
    { headers: { traceparent: parent.header } },
  );
  const line = given.app.logs.map((l) => JSON.parse(l)).find((l) => l.msg === "call" && l.traceId === parent.traceId);
  expect(line).toMatchObject({ procedure: "Create", code: "ok" });

  const { event } = await clientFor(AuditService, given.app, "connect", given.acme.writer).create({
    event: { action: "root" },
  });
  const traceId = event?.request?.correlationId ?? "";
  expect(traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(server(spansOf(traceId), "audit.v1.AuditService/Create").parentSpanContext).toBeUndefined();
});

test("with tracing off, a traceparent still names the call's trace in the log and the event", async () => {
  const plain = await startTestApp();
  try {
    const tokens = await provisionTenant(plain, "plain");
    const parent = traceparent();
    const { event } = await clientFor(AuditService, plain, "grpc", tokens.writer).create(
      { event: { action: "untraced" } },
      { headers: { traceparent: parent.header } },
    );
    expect(event?.request?.correlationId).toBe(parent.traceId);
    expect(plain.logs.some((l) => l.includes(`"traceId":"${parent.traceId}"`))).toBe(true);
    // No traceparent, no tracing: nothing is invented.
    const { event: bare } = await clientFor(AuditService, plain, "grpc", tokens.writer).create({
      event: { action: "untraced" },
    });
    expect(bare?.request).toBeUndefined();
  } finally {
    await plain.close();
  }
});

test("tracing turns on from the standard OTEL_* variables, and bad values stop start-up naming the variable", () => {
  expect(loadConfig({}).tracing).toBe(false);
  expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }).tracing).toBe(true);
  expect(loadConfig({ OTEL_TRACES_EXPORTER: "otlp" }).tracing).toBe(true);
  expect(loadConfig({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }).tracing).toBe(
    false,
  );
  expect(loadConfig({ OTEL_SDK_DISABLED: "true", OTEL_TRACES_EXPORTER: "otlp" }).tracing).toBe(false);
  expect(() => loadConfig({ OTEL_TRACES_EXPORTER: "zipkin" })).toThrow(
    /OTEL_TRACES_EXPORTER="zipkin": must be one of otlp, none/,
  );
  expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(/must be one of http\/protobuf/);
  expect(loadConfig({ OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }).tracing).toBe(
    false,
  );
  expect(() => loadConfig({ OTEL_TRACES_SAMPLER: "ratio" })).toThrow(/OTEL_TRACES_SAMPLER="ratio": must be one of/);
  expect(() => loadConfig({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "25%" })).toThrow(
    /OTEL_TRACES_SAMPLER_ARG="25%": must be the share of traces to sample, from 0 to 1/,
  );
  expect(() => loadConfig({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1.5" })).toThrow(
    /OTEL_TRACES_SAMPLER_ARG/,
  );
  expect(() => loadConfig({ METRICS_PORT: "70000" })).toThrow(/METRICS_PORT="70000": must be a whole number/);
});
