import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { kTraceId } from "../service/call-context.js";
import type { StoreObserver } from "../store/observer.js";
import { kRoute } from "./context.js";
import type { Metrics } from "./metrics.js";
import type { Tracing } from "./tracing.js";

export interface Telemetry {
  metrics: Metrics;
  /** Absent when tracing is off: then no span is made and no context is switched. */
  tracing?: Tracing;
}

const propagator = new W3CTraceContextPropagator();
const fetchHeaders: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};
const nodeHeaders: TextMapGetter<Record<string, string | string[] | undefined>> = {
  get: (headers, key) => headers[key],
  keys: (headers) => Object.keys(headers),
};

/**
 * Metrics and tracing for every call, whatever its protocol or route: the outermost interceptor, so it sees the
 * code the client gets and the whole duration. A `traceparent` header (W3C) makes the call's span its child and gives
 * the call its trace id even with tracing off (for the request log and request.correlation_id). Database work
 * below it gets child spans through the store's observer.
 */
export function telemetryInterceptor(telemetry: Telemetry): Interceptor {
  const { metrics } = telemetry;
  const tracer = telemetry.tracing?.tracer;
  return (next) => async (req) => {
    const started = performance.now();
    const labels = {
      service: req.service.typeName,
      method: req.method.name,
      protocol: req.contextValues.get(kRoute) || protocolOf(req.header.get("content-type")),
    };
    // Legacy routes have no headers of their own on the inner call: their request's context is the active one.
    const parent = req.header.has("traceparent")
      ? propagator.extract(context.active(), req.header, fetchHeaders)
      : context.active();
    let span: Span | undefined;
    let active: Context | undefined;
    if (tracer) {
      span = tracer.startSpan(
        `${labels.service}/${labels.method}`,
        {
          kind: SpanKind.SERVER,
          attributes: {
            "rpc.system": labels.protocol === "grpc" || labels.protocol === "grpc-web" ? "grpc" : "connect_rpc",
            "rpc.service": labels.service,
            "rpc.method": labels.method,
            "audit.protocol": labels.protocol,
          },
        },
        parent,
      );
      active = trace.setSpan(parent, span);
    }
    const traceId = (span ? span.spanContext() : trace.getSpanContext(parent))?.traceId;
    if (traceId) req.contextValues.set(kTraceId, traceId);
    metrics.active.inc(labels);

    let ended = false;
    const end = (code: Code | 0) => {
      if (ended) return;
      ended = true;
      metrics.active.dec(labels);
      metrics.calls.inc({ ...labels, code: code === 0 ? "OK" : Code[code] });
      metrics.duration.observe(labels, (performance.now() - started) / 1000);
      if (span) {
        span.setAttribute("rpc.grpc.status_code", code);
        if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: Code[code] });
        span.end();
      }
    };
    try {
      const res = active ? await context.with(active, () => next(req)) : await next(req);
      if (!res.stream) {
        end(0);
        return res;
      }
      return { ...res, message: observeStream(res.message, active, end) };
    } catch (error) {
      end(ConnectError.from(error).code);
      throw error;
    }
  };
}

/**
 * The RPC protocol a request's content type names (Connect's own handlers have already negotiated it); in-process
 * calls have none (a legacy route's carry its name in kRoute instead).
 */
function protocolOf(contentType: string | null): string {
  if (contentType === null) return "in-process";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/**
 * The response stream, each step run in the call's context (Tail reads the store as it goes), ending the call once:
 * on its last message, its error, or the server giving it up (the client went away: CANCELED), even before the first
 * step, when an async generator's `finally` would never run.
 */
function observeStream<T>(
  source: AsyncIterable<T>,
  active: Context | undefined,
  end: (code: Code | 0) => void,
): AsyncIterable<T> {
  const it = source[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]: () => ({
      async next() {
        try {
          const step = active ? await context.with(active, () => it.next()) : await it.next();
          if (step.done) end(0);
          return step;
        } catch (error) {
          end(ConnectError.from(error).code);
          throw error;
        }
      },
      async return(value?: unknown) {
        end(Code.Canceled);
        await it.return?.(value);
        return { done: true, value: undefined };
      },
    }),
  };
}

/**
 * Runs `handle` with the trace context of an HTTP request's `traceparent` active, so in-process calls made while
 * serving it (legacy routes) are its children. Nothing happens with tracing off: the API has no context manager.
 */
export function withRequestTraceContext<T>(headers: Record<string, string | string[] | undefined>, handle: () => T): T {
  if (headers.traceparent === undefined) return handle();
  return context.with(propagator.extract(ROOT_CONTEXT, headers, nodeHeaders), handle);
}

/** The store's observer: a child span per database operation when tracing, and the store's metric families. */
export function storeObserver(telemetry: Telemetry): StoreObserver {
  const { metrics } = telemetry;
  const tracer = telemetry.tracing?.tracer;
  const spanNames = {
    append: "EventStore.append",
    list: "EventStore.list",
    count: "EventStore.count",
    range: "EventStore.range",
    group_commit: "GroupCommit.wait",
  } as const;
  return {
    async operation(name, events, run) {
      const started = performance.now();
      const labels = { operation: name };
      metrics.operations.inc(labels);
      const span = tracer?.startSpan(spanNames[name], {
        kind: SpanKind.INTERNAL,
        attributes: { "db.system": "postgresql", ...(events > 0 ? { "audit.events": events } : {}) },
      });
      try {
        return span ? await context.with(trace.setSpan(context.active(), span), run) : await run();
      } catch (error) {
        span?.setStatus({ code: SpanStatusCode.ERROR, message: String((error as Error)?.message ?? error) });
        throw error;
      } finally {
        metrics.operations.dec(labels);
        metrics.operationDuration.observe(labels, (performance.now() - started) / 1000);
        span?.end();
      }
    },
    stored(tenant, count) {
      if (metrics.tenantLabels) metrics.eventsStored.inc({ tenant }, count);
      else metrics.eventsStored.inc(count);
    },
    flushed(events) {
      metrics.flushSize.observe(events);
    },
  };
}
