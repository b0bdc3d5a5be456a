import type { Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-node";

export interface Tracing {
  tracer: Tracer;
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * The OpenTelemetry SDK, started only when tracing is on (config.tracing): spans are batched and exported over
 * OTLP/HTTP with protobuf, the exporter reading OTEL_EXPORTER_OTLP_* itself. `exporter` replaces it (tests keep spans
 * in memory and get each one as it ends). Registering installs the AsyncLocalStorage context manager, which carries
 * the active span through the store's awaits; with tracing off nothing is installed and the API stays a no-op.
 */
export function startTracing(exporter?: SpanExporter): Tracing {
  const provider = new NodeTracerProvider({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (envDetector) override the name.
    resource: defaultResource()
      .merge(resourceFromAttributes({ "service.name": "audit-trail" }))
      .merge(detectResources({ detectors: [envDetector] })),
    spanProcessors: [exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  return { tracer: provider.getTracer("audit-trail"), shutdown: () => provider.shutdown() };
}
