import { clone, create, type DescMessage, type DescMethod, isMessage, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type Client,
  Code,
  ConnectError,
  type ConnectRouterOptions,
  type ContextValues,
  createClient,
  createContextValues,
  createHandlerContext,
  createServiceImplSpec,
  type HandlerContext,
  type MethodImplSpec,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  createDeadlineSignal,
  createLinkedAbortController,
  invokeUnaryImplementation,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { kRoute } from "../interceptors/context.js";
import type { ServiceRegistration } from "./grpc-unary.js";

export interface InProcessClients {
  audit: Client<typeof AuditService>;
  admin: Client<typeof AdminService>;
}

/** What in-process calls share with the network router: its interceptors, request gate and shutdown signal. */
export type InProcessOptions = Pick<ConnectRouterOptions, "interceptors" | "requestGate" | "shutdownSignal"> & {
  /** The route the calls come from (a legacy API's name), for metrics and traces; kRoute in their context. */
  route?: string;
};

/**
 * Typed clients that call the service's own handlers in memory, through the same interceptors as the network
 * (request log, error mapping, auth). Legacy adapters use these instead of touching the store, and pass the caller's
 * credential as an `authorization` header on each call. Nothing is serialised, so the router's readMaxBytes and
 * writeMaxBytes do not apply: adapters bound the bodies they read themselves (MAX_BODY_BYTES).
 */
export function createInProcessClients(services: ServiceRegistration[], options: InProcessOptions): InProcessClients {
  const transport = createInProcessTransport(services, options);
  return { audit: createClient(AuditService, transport), admin: createClient(AdminService, transport) };
}

/** The reason a call's context is aborted with once it has completed: made once, not a DOMException with a stack. */
const completed = new ConnectError("the call has completed", Code.Canceled);

/**
 * A Transport that hands each call's message to the implementation, as the direct gRPC path (grpc-unary.ts) does.
 * Connect's createRouterTransport serialised every request and response twice and ran both the client and the server
 * half of the Connect protocol, which made a legacy Create cost about three times a Connect JSON one. From the
 * handler context on, this uses Connect's own pieces (createHandlerContext, invokeUnaryImplementation,
 * transformInvokeImplementation), so interceptors and handlers cannot tell the difference; the caller gets what a
 * Connect client would: the response with its headers and trailers, or a ConnectError whose metadata holds them.
 * The response message is the handler's own, not a copy: handlers build a new one for every call.
 */
export function createInProcessTransport(services: ServiceRegistration[], options: InProcessOptions): Transport {
  const interceptors = options.interceptors ?? [];
  const specs = new Map<string, MethodImplSpec>();
  for (const { service, impl } of services) {
    const spec = createServiceImplSpec(service, impl);
    for (const method of service.methods)
      specs.set(procedureOf(method), spec.methods[method.localName] as MethodImplSpec);
  }

  function start(
    method: DescMethod,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0],
    contextValues: ContextValues | undefined,
  ) {
    const procedure = procedureOf(method);
    const spec = specs.get(procedure);
    if (!spec) throw new ConnectError(`${procedure} is not served in process`, Code.Unimplemented);
    const caller = callerSignal(signal, timeoutMs);
    const context = createHandlerContext({
      ...spec,
      service: method.parent,
      requestMethod: "POST",
      protocolName: "in-process",
      url: `in-process:///${procedure}`,
      timeoutMs,
      shutdownSignal: options.shutdownSignal,
      requestSignal: caller.signal,
      requestHeader: header,
      contextValues: contextValues ?? (options.route ? createContextValues().set(kRoute, options.route) : undefined),
    });
    return {
      spec,
      context,
      caller,
      /** Ends the call as a Connect handler does, and gives the caller the error a Connect client would get. */
      fail(error: unknown): ConnectError {
        // Before reading the error: a request gate may correct it in place when the context aborts.
        context.abort(error);
        caller.cleanup();
        return callerError(error, context);
      },
      succeed() {
        context.abort(completed);
        caller.cleanup();
      },
    };
  }

  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const call = start(method, signal, timeoutMs, header, contextValues);
      try {
        if (call.spec.kind !== "unary") throw new ConnectError(`${procedureOf(method)} is not unary`, Code.Internal);
        if (call.caller.signal?.aborted) throw abortError(call.caller.signal);
        await options.requestGate?.(call.context);
        const request = requestMessage(method.input, input);
        const message = await untilAborted(
          invokeUnaryImplementation(call.spec, call.context, request, interceptors),
          call.caller.signal,
        );
        call.succeed();
        return {
          stream: false,
          service: method.parent,
          method,
          header: call.context.responseHeader,
          message,
          trailer: call.context.responseTrailer,
        } as UnaryResponse<typeof method.input, typeof method.output>;
      } catch (error) {
        throw call.fail(error);
      }
    },

    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const call = start(method, signal, timeoutMs, header, contextValues);
      let responses: AsyncIterator<unknown>;
      try {
        if (call.caller.signal?.aborted) throw abortError(call.caller.signal);
        await options.requestGate?.(call.context);
        responses = transformInvokeImplementation(
          call.spec,
          call.context,
          interceptors,
        )(requestMessages(method.input, input))[Symbol.asyncIterator]();
      } catch (error) {
        throw call.fail(error);
      }
      let finished = false;
      const finish = () => {
        finished = true;
        // The handler may still be waiting (a Tail between events): its context is aborted, so let it wind down.
        responses.return?.().catch(() => {});
      };
      return {
        stream: true,
        service: method.parent,
        method,
        // Live: the interceptors' headers arrive here when the call starts running, i.e. on the first read.
        header: call.context.responseHeader,
        trailer: call.context.responseTrailer,
        message: {
          [Symbol.asyncIterator]: () => ({
            async next() {
              if (finished) return { done: true, value: undefined };
              try {
                const result = await untilAborted(responses.next(), call.caller.signal);
                if (result.done) {
                  finished = true;
                  call.succeed();
                }
                return result;
              } catch (error) {
                const failure = call.fail(error);
                finish();
                throw failure;
              }
            },
            async return() {
              if (!finished) {
                call.succeed();
                finish();
              }
              return { done: true, value: undefined };
            },
          }),
        },
      } as StreamResponse<typeof method.input, typeof method.output>;
    },
  };
}

function procedureOf(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/**
 * The handler's own request message. Over the network every call decodes a fresh one, and the auth interceptor
 * writes the caller's tenant into it, so a caller's object must not be handed over as it is: an init shape becomes a
 * new message (create), and a message is cloned, so the caller may reuse what it passed. create() keeps nested
 * messages, Struct values and bytes by reference rather than copying them again: handlers and interceptors only
 * assign top-level fields, and adapters build each request afresh, so the deep copy would buy nothing.
 */
function requestMessage<I extends DescMessage>(schema: I, input: MessageInitShape<I>) {
  return isMessage(input, schema) ? clone(schema, input) : create(schema, input);
}

async function* requestMessages<I extends DescMessage>(schema: I, inputs: AsyncIterable<MessageInitShape<I>>) {
  for await (const input of inputs) yield requestMessage(schema, input);
}

/**
 * The caller's cancel signal and deadline together, as a Connect client watches them. Not the shutdown signal: a
 * network client waits for the server's answer while the server drains, and so does an in-process one. Legacy
 * adapters pass neither, so their calls make no timer and no linked controller.
 */
function callerSignal(
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
): { signal: AbortSignal | undefined; cleanup(): void } {
  if (timeoutMs === undefined) return { signal, cleanup: () => {} };
  const deadline = createDeadlineSignal(timeoutMs);
  if (!signal) return deadline;
  const linked = createLinkedAbortController(signal, deadline.signal);
  return {
    signal: linked.signal,
    cleanup() {
      deadline.cleanup();
      // Unhooks it from the caller's signal, which may outlive the call.
      linked.abort(completed);
    },
  };
}

/**
 * The handler's outcome, or a rejection as soon as the caller's signal aborts: a cancelled or expired call returns
 * at once, as a network client's would, even if the handler does not watch ctx.signal (it is aborted too).
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    // Always settled through here, so a handler's late failure is never an unhandled rejection.
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** What a Connect client throws when its signal aborts: the reason (e.g. DEADLINE_EXCEEDED), or CANCELED. */
function abortError(signal: AbortSignal): ConnectError {
  return ConnectError.from(signal.reason, Code.Canceled);
}

/**
 * The error a Connect client would throw: a ConnectError (anything else is INTERNAL, as a handler sends it) whose
 * metadata holds the response headers and trailers and the error's own metadata. A copy, because the handler's error
 * may be shared. Details stay in their outgoing form ({desc, value}); findDetails reads both forms.
 */
function callerError(error: unknown, context: HandlerContext): ConnectError {
  const e =
    error instanceof ConnectError
      ? error
      : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
  const metadata = new Headers(context.responseHeader);
  for (const headers of [context.responseTrailer, e.metadata]) {
    headers.forEach((value, name) => {
      metadata.set(name, value);
    });
  }
  const copy = new ConnectError(e.rawMessage, e.code, metadata, undefined, e.cause);
  copy.details = e.details;
  return copy;
}
