import {
  clone,
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  isMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouterOptions,
  type ContextValues,
  createContextValues,
  createServiceImplSpec,
  type HandlerContext,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import {
  createMethodSerializationLookup,
  envelopeDecompress,
  invokeUnaryImplementation,
  mergeNonProtocolHeaders,
  transformInvokeImplementation,
  type UniversalServerResponse,
  uResponseMethodNotAllowed,
  uResponseUnsupportedMediaType,
} from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes, trailerMux } from "@connectrpc/connect/protocol-connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { kPrincipal, type Principal } from "../auth/principal.js";
import { asClientFault } from "../interceptors/client-faults.js";
import { kRoute } from "../interceptors/context.js";

/**
 * The one adapter to connect-es's internals (`@connectrpc/connect/protocol*`, marked `@private`): every call that does
 * not go through Connect's router (the direct gRPC path, REST, the legacy APIs) is invoked here, and the few wire
 * helpers the server needs from those modules are re-exported from here, so a Connect upgrade is ported in one file.
 */

/** A service and its implementation, as `registration` makes it. */
export interface ServiceRegistration {
  service: DescService;
  impl: ServiceImpl<DescService>;
}

/** Takes a complete implementation only: a missing RPC is a compile error, not an UNIMPLEMENTED at run time. */
export function registration<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceRegistration {
  return { service, impl: impl as unknown as ServiceImpl<DescService> };
}

/** What the invoker shares with the network router: its interceptors, limits and shutdown signal. */
export type InvokerOptions = Pick<
  ConnectRouterOptions,
  "interceptors" | "readMaxBytes" | "writeMaxBytes" | "maxTimeoutMs" | "shutdownSignal" | "binaryOptions"
>;

type HeadersInit = ConstructorParameters<typeof Headers>[0];
/** The handler context as Connect's createHandlerContext makes it: a HandlerContext that the invoker ends. */
type CallContext = HandlerContext & { abort(reason: unknown): void };

/** How a call arrived: what its handler context says about the request. */
export interface CallInit {
  /** The request's headers (Authorization, custom metadata). */
  header?: HeadersInit;
  /** The call's context values (request id, peer); a fresh set when absent. */
  contextValues?: ContextValues;
  /** The route a REST or legacy call came by, as kRoute in its context (metrics, traces). */
  route?: string;
  /**
   * The call's own controller, which the caller aborts (with a CANCELED error) when its client goes away: the
   * handler context's signal is its signal. A fresh one when absent.
   */
  controller?: AbortController;
  /** The caller's deadline; over the router's maxTimeoutMs is INVALID_ARGUMENT, as on Connect's own path. */
  timeoutMs?: number;
  /** The context's protocolName. */
  protocolName: string;
  url?: string;
  /** The response metadata the protocol starts from (its content type, gRPC's status trailer). */
  responseHeader?: HeadersInit;
  responseTrailer?: HeadersInit;
}

/** What a call produced: its message or its error, with the response metadata and the authenticated caller. */
export type Outcome<T> = (
  | { message: T; error?: undefined }
  | {
      message?: undefined;
      /** A ConnectError as the caller should see it: a misreported client fault is already corrected. */
      error: ConnectError;
    }
) & {
  header: Headers;
  trailer: Headers;
  /** Who the auth interceptor authenticated; undefined for public RPCs and calls refused before it. */
  principal: Principal | undefined;
};

/** A server-streaming call under way. `messages` throws the call's error, corrected as for a unary call. */
export interface ServerStream<T> {
  header: Headers;
  trailer: Headers;
  messages: AsyncIterator<T>;
  principal(): Principal | undefined;
  /** Ends the call early (the caller has gone, or stopped reading). */
  close(): void;
}

export interface Invoker {
  /** Every method of the registered services. */
  methods: readonly DescMethod[];
  /**
   * `input` is the request, or a function that reads and decodes it: its errors (a malformed body, a deadline
   * header out of range) are the call's, answered like any other.
   */
  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I> | (() => Promise<MessageShape<I>>),
    init: CallInit,
  ): Promise<Outcome<MessageShape<O>>>;
  serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    input: MessageInitShape<I> | (() => Promise<MessageShape<I>>),
    init: CallInit,
  ): ServerStream<MessageShape<O>>;
  /** The binary codec of a method's messages with the router's limits, for the direct gRPC path. */
  binary(method: DescMethod): {
    parse(bytes: Uint8Array): unknown;
    serialize(message: unknown): Uint8Array;
  };
}

/** The reason a call's context is aborted with once it has completed: made once, not a DOMException with a stack. */
const completed = new ConnectError("the call has completed", Code.Canceled);

/**
 * Builds the invoker once from the service registrations and the router options. A call gets the handler context a
 * Connect handler would give it, runs the same interceptors and implementation, and ends with its context aborted:
 * with the error when it failed, with `completed` when it succeeded or the caller closed a stream.
 */
export function createInvoker(services: ServiceRegistration[], options: InvokerOptions): Invoker {
  const interceptors = options.interceptors ?? [];
  const maxTimeoutMs = options.maxTimeoutMs ?? Number.MAX_SAFE_INTEGER;
  const limits = {
    readMaxBytes: options.readMaxBytes ?? 0xffffffff,
    writeMaxBytes: options.writeMaxBytes ?? 0xffffffff,
  };
  const specs = new Map<DescMethod, MethodImplSpec>();
  for (const { service, impl } of services) {
    const spec = createServiceImplSpec(service, impl);
    for (const method of service.methods) {
      specs.set(method, spec.methods[method.localName] as MethodImplSpec);
    }
  }

  function start(method: DescMethod, init: CallInit) {
    const spec = specs.get(method);
    if (!spec) throw new ConnectError(`${method.parent.typeName}/${method.name} is not served`, Code.Unimplemented);
    const contextValues = init.contextValues ?? createContextValues();
    if (init.route !== undefined) contextValues.set(kRoute, init.route);
    return { spec, context: handlerContext(method, init, contextValues, options.shutdownSignal) };
  }

  return {
    methods: [...specs.keys()],

    async unary(method, input, init) {
      let context: CallContext | undefined;
      try {
        const call = start(method, init);
        context = call.context;
        if (init.timeoutMs !== undefined && init.timeoutMs > maxTimeoutMs)
          throw timeoutTooLong(init.timeoutMs, maxTimeoutMs);
        if (call.spec.kind !== "unary") throw new ConnectError(`${method.name} is not unary`, Code.Internal);
        const request = typeof input === "function" ? await input() : requestMessage(method.input, input);
        const message = await invokeUnaryImplementation(call.spec, context, request, interceptors);
        context.abort(completed);
        return { message: message as MessageShape<typeof method.output>, ...metadata(context) };
      } catch (thrown) {
        const error = callerError(thrown, method);
        context?.abort(error);
        return { error, ...metadata(context) };
      }
    },

    serverStream(method, input, init) {
      const { spec, context } = start(method, init);
      let finished = false;
      let responses: AsyncIterator<unknown> | undefined;
      const finish = (reason: ConnectError) => {
        if (finished) return;
        finished = true;
        context.abort(reason);
        // The handler may still be waiting (a Tail between events): its context is aborted, so let it wind down.
        responses?.return?.().catch(() => {});
      };
      const messages: AsyncIterator<MessageShape<typeof method.output>> = {
        async next() {
          if (finished) return { done: true, value: undefined };
          try {
            if (!responses) {
              if (init.timeoutMs !== undefined && init.timeoutMs > maxTimeoutMs)
                throw timeoutTooLong(init.timeoutMs, maxTimeoutMs);
              const request = typeof input === "function" ? await input() : requestMessage(method.input, input);
              responses = transformInvokeImplementation(
                spec,
                context,
                interceptors,
              )(single(request))[Symbol.asyncIterator]();
            }
            const result = await responses.next();
            if (result.done) finish(completed);
            return result as IteratorResult<MessageShape<typeof method.output>>;
          } catch (thrown) {
            const error = callerError(thrown, method);
            finish(error);
            throw error;
          }
        },
        async return() {
          finish(completed);
          return { done: true, value: undefined };
        },
      };
      return {
        // Live: the interceptors' headers arrive here when the call starts running, i.e. on the first read.
        header: context.responseHeader,
        trailer: context.responseTrailer,
        messages,
        principal: () => context.values.get(kPrincipal),
        close: () => finish(completed),
      };
    },

    binary(method) {
      const serialization = createMethodSerializationLookup(method, options.binaryOptions, undefined, limits);
      const input = serialization.getI(true);
      const output = serialization.getO(true);
      return { parse: (bytes) => input.parse(bytes), serialize: (message) => output.serialize(message as never) };
    },
  };
}

/**
 * What Connect's createHandlerContext makes, on one AbortController (the caller's, when it brings one): its signal
 * is aborted by the caller, the deadline, the server's shutdown or the invoker's end of the call, whichever comes
 * first, with that one's reason. createHandlerContext links three controllers per call for the same.
 */
function handlerContext(
  method: DescMethod,
  init: CallInit,
  values: ContextValues,
  shutdownSignal: AbortSignal | undefined,
): CallContext {
  const controller = init.controller ?? new AbortController();
  const signal = controller.signal;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onShutdown = () => abort(shutdownSignal?.reason);
  const abort = (reason: unknown) => {
    clearTimeout(timer);
    shutdownSignal?.removeEventListener("abort", onShutdown);
    if (!signal.aborted) controller.abort(reason);
  };
  const timeoutMs = init.timeoutMs;
  const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  if (timeoutMs !== undefined) {
    const expire = () => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    if (timeoutMs <= 0) expire();
    else timer = setTimeout(expire, timeoutMs);
  }
  if (shutdownSignal?.aborted) abort(shutdownSignal.reason);
  else shutdownSignal?.addEventListener("abort", onShutdown);
  return {
    method,
    service: method.parent,
    requestMethod: "POST",
    protocolName: init.protocolName,
    url: init.url ?? `/${method.parent.typeName}/${method.name}`,
    signal,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    requestHeader: new Headers(init.header),
    responseHeader: new Headers(init.responseHeader),
    responseTrailer: new Headers(init.responseTrailer),
    values,
    abort,
  };
}

/** Connect's own refusal of a deadline over maxTimeoutMs. */
function timeoutTooLong(timeoutMs: number, maxTimeoutMs: number): ConnectError {
  return new ConnectError(`timeout ${timeoutMs}ms must be <= ${maxTimeoutMs}`, Code.InvalidArgument);
}

function metadata(context: CallContext | undefined) {
  return {
    header: context?.responseHeader ?? new Headers(),
    trailer: context?.responseTrailer ?? new Headers(),
    principal: context?.values.get(kPrincipal),
  };
}

/**
 * The error a caller gets: a ConnectError (anything else is INTERNAL, as Connect's handlers send it), and the
 * INVALID_ARGUMENT a misreported client fault should have been.
 */
export function callerError(error: unknown, method: DescMethod): ConnectError {
  if (!(error instanceof ConnectError))
    return new ConnectError("internal error", Code.Internal, undefined, undefined, error);
  return asClientFault(error, method) ?? error;
}

/**
 * The handler's own request message. Over the network every call decodes a fresh one, and the auth interceptor
 * writes the caller's tenant into it, so a caller's object is not handed over as it is: an init shape becomes a new
 * message, and a message is cloned. create() keeps nested messages by reference: handlers and interceptors only
 * assign top-level fields.
 */
function requestMessage<I extends DescMessage>(schema: I, input: MessageInitShape<I>): MessageShape<I> {
  return isMessage(input, schema) ? clone(schema, input) : create(schema, input);
}

async function* single<T>(message: T): AsyncIterable<T> {
  yield message;
}

/** The gRPC status trailers (grpc-status, grpc-message, grpc-status-details-bin) of an error, set on `trailer`. */
export function setGrpcStatus(trailer: Headers, error: ConnectError): Headers {
  return setTrailerStatus(trailer, error);
}

/** A grpc-timeout header's deadline, or the error Connect's gRPC handler gives for it. */
export function grpcTimeout(
  value: string | undefined,
  maxTimeoutMs: number,
): { timeoutMs?: number; error?: ConnectError } {
  return parseTimeout(value ?? null, maxTimeoutMs);
}

/** A gRPC envelope's message bytes; a compressed flag without a negotiated encoding is connect-es's own error. */
export async function envelopeMessage(envelope: { flags: number; data: Uint8Array }, readMaxBytes: number) {
  return (await envelopeDecompress(envelope, null, readMaxBytes)).data;
}

/** The Connect protocol's JSON error body. */
export function connectErrorJson(error: ConnectError): Uint8Array {
  return errorToJsonBytes(error, {});
}

/**
 * The response headers of a unary call as the Connect protocol sends them: the handler's headers, an error's own
 * metadata (not its protocol headers), and the trailers as `trailer-*`.
 */
export function unaryResponseHeaders(outcome: Pick<Outcome<unknown>, "header" | "trailer" | "error">): Headers {
  const header = new Headers(outcome.header);
  if (outcome.error) mergeNonProtocolHeaders(header, outcome.error.metadata);
  return trailerMux(header, outcome.trailer);
}

/** The HTTP status the Connect protocol gives a code, which REST answers with too. */
export function httpStatusOf(code: Code): number {
  return codeToHttpStatus(code);
}

/** Which of connect-es's bodiless negotiation failures a router response is, if either. */
export function negotiationFailure(uRes: UniversalServerResponse): "method" | "media-type" | undefined {
  if (uRes === uResponseMethodNotAllowed) return "method";
  if (uRes === uResponseUnsupportedMediaType) return "media-type";
  return undefined;
}
