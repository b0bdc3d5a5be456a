import { create } from "@bufbuild/protobuf";
import { Code, createClient, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AuditService, CreateRequestSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { rpcFailure } from "../../src/legacy/rpc-failure.js";
import type { ServiceRegistration } from "../../src/server/grpc-unary.js";
import { createInProcessTransport } from "../../src/server/in-process.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { provisionTenant, type TenantTokens } from "../support/clients.js";
import { failureOf } from "../support/errors.js";

/**
 * The in-process clients (src/server/in-process.ts) the legacy adapters call: the same interceptors, handler context
 * and errors as a Connect client over the network, without serialising anything.
 */
let app: TestApp;
let acme: TenantTokens;
beforeAll(async () => {
  app = await startTestApp();
  acme = await provisionTenant(app, "acme");
});
afterAll(() => app?.close());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const event = { action: "doc.edit", source: "in-process-test" };

describe("unary calls", () => {
  test("run the auth interceptor: no credential is UNAUTHENTICATED, a writer's credential stores the event", async () => {
    const refused = await failureOf(app.app.clients.audit.create({ event }));
    expect(rpcFailure(refused)).toMatchObject({ code: Code.Unauthenticated, reason: "MISSING_CREDENTIAL" });
    // The request-log interceptor's id, as a Connect client finds it in the error's metadata.
    expect(refused.metadata.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);

    let header: Headers | undefined;
    const { event: stored } = await app.app.clients.audit.create(
      { event },
      { headers: bearer(acme.writer), onHeader: (h) => (header = h) },
    );
    // The auth interceptor filled in the caller's tenant; the handler stored and answered with the event.
    expect(stored).toMatchObject({ tenant: "acme", action: "doc.edit", source: "in-process-test" });
    expect(stored?.sequence).toBeGreaterThan(0n);
    expect(header?.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("fail with the error-mapping interceptor's reason and field violations, as rpcFailure reads them", async () => {
    const error = await failureOf(
      app.app.clients.audit.create(
        { event: { ...event, action: "", id: "has space" } },
        { headers: bearer(acme.writer) },
      ),
    );
    const failure = rpcFailure(error);
    expect(failure.code).toBe(Code.InvalidArgument);
    expect(failure.violations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: "event.action", reason: "MISSING_FIELD" }),
        expect.objectContaining({ field: "event.id", reason: "INVALID_FIELD" }),
      ]),
    );
    // The ErrorInfo reason is the first violation's.
    expect(failure.reason).toBe(failure.violations[0]?.reason);
  });

  test("hand the handler its own message: a message passed in is not written to", async () => {
    // The auth interceptor fills in the tenant of the request it sees; the caller's object must keep its own.
    const request = create(CreateRequestSchema, { event });
    const { event: stored } = await app.app.clients.audit.create(request, { headers: bearer(acme.writer) });
    expect(stored?.tenant).toBe("acme");
    expect(request.tenant).toBe("");
  });
});

describe("Tail, server streaming", () => {
  test("delivers replayed and live events, and ends with CANCELED as soon as the caller aborts", async () => {
    const { event: first } = await app.app.clients.audit.create({ event }, { headers: bearer(acme.writer) });
    const abort = new AbortController();
    const tail = app.app.clients.audit.tail(
      { afterSequence: (first?.sequence ?? 1n) - 1n },
      { headers: bearer(acme.reader), signal: abort.signal },
    );
    const received: bigint[] = [];
    const reading = (async () => {
      for await (const { event: e } of tail) {
        received.push(e?.sequence ?? 0n);
        // A live event after the replayed one; then the caller gives up while the stream waits for more.
        if (received.length === 1) await app.app.clients.audit.create({ event }, { headers: bearer(acme.writer) });
        if (received.length === 2) setTimeout(() => abort.abort(), 50);
      }
    })();
    const error = await failureOf(reading);
    expect(error.code).toBe(Code.Canceled);
    expect(received).toEqual([first?.sequence, (first?.sequence ?? 0n) + 1n]);
  });

  test("runs the interceptors: without a credential it is UNAUTHENTICATED", async () => {
    const error = await failureOf(
      (async () => {
        for await (const _ of app.app.clients.audit.tail({})) break;
      })(),
    );
    expect(rpcFailure(error)).toMatchObject({ code: Code.Unauthenticated, reason: "MISSING_CREDENTIAL" });
  });

  test("ends with DEADLINE_EXCEEDED when the caller's timeoutMs passes", async () => {
    const started = performance.now();
    const error = await failureOf(
      (async () => {
        for await (const _ of app.app.clients.audit.tail({}, { headers: bearer(acme.reader), timeoutMs: 200 })) {
          // No event arrives: nothing is written to this tenant during the call.
        }
      })(),
    );
    expect(Code[error.code]).toBe("DeadlineExceeded");
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe("the caller's deadline and signal, against a handler that ignores ctx.signal", () => {
  // A Create that never answers and ignores its signal, but records the context it was given.
  const contexts: HandlerContext[] = [];
  const impl: Partial<ServiceImpl<typeof AuditService>> = {
    create(_req, ctx) {
      contexts.push(ctx);
      return new Promise<never>(() => {});
    },
  };
  const client = createClient(
    AuditService,
    createInProcessTransport([{ service: AuditService, impl }] as ServiceRegistration[], {}),
  );

  test("timeoutMs surfaces as DEADLINE_EXCEEDED at the deadline, and aborts the handler's context", async () => {
    const error = await failureOf(client.create({ event }, { timeoutMs: 50 }));
    expect(Code[error.code]).toBe("DeadlineExceeded");
    const ctx = contexts.at(-1);
    expect(ctx?.signal.aborted).toBe(true);
  });

  test("the caller's abort surfaces as CANCELED, and reaches the handler's ctx.signal", async () => {
    const abort = new AbortController();
    const call = client.create({ event }, { signal: abort.signal, headers: { "x-test": "1" } });
    setTimeout(() => abort.abort(), 20);
    const error = await failureOf(call);
    expect(Code[error.code]).toBe("Canceled");
    const ctx = contexts.at(-1);
    expect(ctx?.signal.aborted).toBe(true);
    expect(ctx?.requestHeader.get("x-test")).toBe("1");
  });
});
