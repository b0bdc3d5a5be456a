import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface MetricsOptions {
  /** Label events_stored with the tenant id: one series per tenant, so only when an operator asks for it. */
  tenantLabels: boolean;
  /** DATABASE_POOL_SIZE, reported beside the operations in flight. */
  poolSize: number;
}

/** Read at each scrape rather than counted on every change: the current depth of queues the process holds. */
export interface MetricsSources {
  /** Events waiting for a group commit. */
  queuedEvents(): number;
  /** Tail streams open. */
  tailStreams(): number;
}

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The service's Prometheus metrics (docs/operations.md lists every family). Label values come from the contract
 * (service, method), the code enum, the protocol and route names, and the store's operation names: a bounded set,
 * unless tenant labels are turned on.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly calls: Counter<"service" | "method" | "protocol" | "code">;
  readonly duration: Histogram<"service" | "method" | "protocol">;
  readonly active: Gauge<"service" | "method" | "protocol">;
  readonly eventsStored: Counter<"tenant">;
  readonly flushSize: Histogram;
  readonly operations: Gauge<"operation">;
  readonly operationDuration: Histogram<"operation">;
  readonly tenantLabels: boolean;

  constructor(options: MetricsOptions, sources: MetricsSources) {
    const registers = [this.registry];
    this.tenantLabels = options.tenantLabels;
    this.calls = new Counter({
      name: "audit_rpc_calls_total",
      help: "Calls finished, by service, method, protocol or route, and status code.",
      labelNames: ["service", "method", "protocol", "code"],
      registers,
    });
    this.duration = new Histogram({
      name: "audit_rpc_duration_seconds",
      help: "Time from a call reaching the interceptors to its last response message (a stream's whole life).",
      labelNames: ["service", "method", "protocol"],
      buckets: SECONDS,
      registers,
    });
    this.active = new Gauge({
      name: "audit_rpc_active_calls",
      help: "Calls in progress, open streams included.",
      labelNames: ["service", "method", "protocol"],
      registers,
    });
    this.eventsStored = new Counter({
      name: "audit_events_stored_total",
      help: "Events committed to the log (idempotent replays are not counted).",
      labelNames: options.tenantLabels ? ["tenant"] : [],
      registers,
    });
    this.flushSize = new Histogram({
      name: "audit_group_commit_flush_events",
      help: "Events written by each group commit transaction (concurrent Create and Publish calls share one).",
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers,
    });
    new Gauge({
      name: "audit_group_commit_queued_events",
      help: "Events waiting for a group commit flush (INGEST_QUEUE_LIMIT caps it).",
      registers,
      collect() {
        this.set(sources.queuedEvents());
      },
    });
    new Gauge({
      name: "audit_tail_streams",
      help: "Tail streams open on this process, over every protocol and route.",
      registers,
      collect() {
        this.set(sources.tailStreams());
      },
    });
    new Gauge({
      name: "audit_db_pool_size",
      help: "PostgreSQL connections the pool may open (DATABASE_POOL_SIZE).",
      registers,
    }).set(options.poolSize);
    this.operations = new Gauge({
      name: "audit_db_operations_in_flight",
      help:
        "Store operations started and not finished: append transactions (each holds a connection), list and range " +
        "reads, and group_commit (calls waiting for their group commit).",
      labelNames: ["operation"],
      registers,
    });
    this.operationDuration = new Histogram({
      name: "audit_db_operation_duration_seconds",
      help: "Time each store operation took, waiting for a connection included.",
      labelNames: ["operation"],
      buckets: SECONDS,
      registers,
    });
    collectDefaultMetrics({ register: this.registry });
  }

  /** The exposition: Prometheus text format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
