import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { describe, expect, test } from "vitest";
import { AuditService, CreateRequestSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { rpcFailure } from "../../src/legacy/rpc-failure.js";
import { createInvoker, registration } from "../../src/server/invoker.js";
import { appFixture } from "../support/fixture.js";

/**
 * The invoker (src/server/invoker.ts) the direct gRPC path, REST and the legacy adapters call: the same interceptors,
 * handler context and errors as the router's calls, and the authenticated caller with the outcome.
 */
const given = appFixture({ tenants: ["acme"] });

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const event = { action: "doc.edit", source: "invoker-test" };
const init = (header: Record<string, string> = {}) => ({ header, protocolName: "test" });

describe("unary calls", () => {
  test("run the auth interceptor: no credential is UNAUTHENTICATED, a writer's credential stores the event", async () => {
    const refused = await given.app.app.invoker.unary(AuditService.method.create, { event }, init());
    expect(refused.error && rpcFailure(refused.error)).toMatchObject({
      code: Code.Unauthenticated,
      reason: "MISSING_CREDENTIAL",
    });
    expect(refused.principal).toBeUndefined();
    // The request-log interceptor's id, in the error's metadata.
    expect(refused.error?.metadata.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);

    const stored = await given.app.app.invoker.unary(
      AuditService.method.create,
      { event },
      init(bearer(given.acme.writer)),
    );
    // The auth interceptor filled in the caller's tenant; the handler stored and answered with the event.
    expect(stored.message?.event).toMatchObject({ tenant: "acme", action: "doc.edit", source: "invoker-test" });
    expect(stored.message?.event?.sequence).toBeGreaterThan(0n);
    expect(stored.header.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    // The caller comes back with the result: no second call is needed to learn who it was.
    expect(stored.principal).toMatchObject({ tenant: "acme" });
  });

  test("fail with the error-mapping interceptor's reason and field violations, as rpcFailure reads them", async () => {
    const { error } = await given.app.app.invoker.unary(
      AuditService.method.create,
      { event: { ...event, action: "", id: "has space" } },
      init(bearer(given.acme.writer)),
    );
    const failure = rpcFailure(error);
    expect(failure.code).toBe(Code.InvalidArgument);
    expect(failure.violations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: "event.action", reason: "MISSING_FIELD" }),
        expect.objectContaining({ field: "event.id", reason: "INVALID_FIELD" }),
      ]),
    );
    expect(failure.reason).toBe(failure.violations[0]?.reason);
  });

  test("hand the handler its own message: a message passed in is not written to", async () => {
    // The auth interceptor fills in the tenant of the request it sees; the caller's object must keep its own.
    const request = create(CreateRequestSchema, { event });
    const { message } = await given.app.app.invoker.unary(
      AuditService.method.create,
      request,
      init(bearer(given.acme.writer)),
    );
    expect(message?.event?.tenant).toBe("acme");
    expect(request.tenant).toBe("");
  });

  test("a request that cannot be read is the call's INVALID_ARGUMENT, not the server's INTERNAL", async () => {
    const { error } = await given.app.app.invoker.unary(
      AuditService.method.create,
      async () => {
        throw new ConnectError("parse binary: premature EOF", Code.Internal);
      },
      init(bearer(given.acme.writer)),
    );
    expect(error && rpcFailure(error)).toMatchObject({ code: Code.InvalidArgument, reason: "MALFORMED_MESSAGE" });
  });

  test("a deadline over maxTimeoutMs is refused, as Connect's handlers refuse it", async () => {
    const { error } = await given.app.app.invoker.unary(
      AuditService.method.create,
      { event },
      {
        ...init(bearer(given.acme.writer)),
        timeoutMs: 25 * 3600 * 1000,
      },
    );
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toMatch(/^timeout \d+ms must be <= \d+$/);
  });
});

describe("Tail, server streaming", () => {
  test("delivers replayed and live events, and ends the handler's context when the caller closes", async () => {
    const first = await given.app.app.invoker.unary(
      AuditService.method.create,
      { event },
      init(bearer(given.acme.writer)),
    );
    const sequence = first.message?.event?.sequence ?? 1n;
    const tail = given.app.app.invoker.serverStream(
      AuditService.method.tail,
      { afterSequence: sequence - 1n },
      init(bearer(given.acme.reader)),
    );
    const received: bigint[] = [];
    for (let r = await tail.messages.next(); !r.done; r = await tail.messages.next()) {
      received.push(r.value.event?.sequence ?? 0n);
      // A live event after the replayed one; then the caller gives up while the stream waits for more.
      if (received.length === 1) {
        await given.app.app.invoker.unary(AuditService.method.create, { event }, init(bearer(given.acme.writer)));
      }
      if (received.length === 2) break;
    }
    expect(tail.principal()).toMatchObject({ tenant: "acme" });
    tail.close();
    expect(await tail.messages.next()).toEqual({ done: true, value: undefined });
    expect(received).toEqual([sequence, sequence + 1n]);
  });

  test("runs the interceptors: without a credential it is UNAUTHENTICATED", async () => {
    const tail = given.app.app.invoker.serverStream(AuditService.method.tail, {}, init());
    const error = await tail.messages.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(rpcFailure(error)).toMatchObject({ code: Code.Unauthenticated, reason: "MISSING_CREDENTIAL" });
  });

  test("ends with DEADLINE_EXCEEDED when the call's timeoutMs passes", async () => {
    const started = performance.now();
    const tail = given.app.app.invoker.serverStream(
      AuditService.method.tail,
      {},
      {
        ...init(bearer(given.acme.reader)),
        timeoutMs: 200,
      },
    );
    const error = await (async () => {
      // No event arrives: nothing is written to this tenant during the call.
      for (let r = await tail.messages.next(); !r.done; r = await tail.messages.next());
    })().then(
      () => undefined,
      (e: unknown) => e as ConnectError,
    );
    expect(error && Code[error.code]).toBe("DeadlineExceeded");
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });
});

describe("the handler's context", () => {
  // A Create that answers only once its signal aborts, and records the context it was given.
  const contexts: HandlerContext[] = [];
  const impl = {
    create(_req, ctx) {
      contexts.push(ctx);
      return new Promise<never>((_resolve, reject) => {
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
      });
    },
  } as Partial<ServiceImpl<typeof AuditService>>;
  const invoker = createInvoker([registration(AuditService, impl as ServiceImpl<typeof AuditService>)], {});

  test("timeoutMs aborts the handler's signal with DEADLINE_EXCEEDED", async () => {
    const { error } = await invoker.unary(AuditService.method.create, { event }, { ...init(), timeoutMs: 50 });
    expect(error && Code[error.code]).toBe("DeadlineExceeded");
    expect(contexts.at(-1)?.signal.aborted).toBe(true);
  });

  test("the caller's signal reaches ctx.signal as CANCELED, with the request's headers", async () => {
    const abort = new AbortController();
    const call = invoker.unary(
      AuditService.method.create,
      { event },
      {
        ...init({ "x-test": "1" }),
        controller: abort,
      },
    );
    setTimeout(() => abort.abort(new ConnectError("gone", Code.Canceled)), 20);
    const { error } = await call;
    expect(error && Code[error.code]).toBe("Canceled");
    expect(contexts.at(-1)?.requestHeader.get("x-test")).toBe("1");
  });
});
