import { setMaxListeners } from "node:events";
import { type ConnectRouterOptions, createConnectRouter, type ServiceImpl } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { AdminService } from "../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../gen/audit/v1/audit_service_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionAlpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../gen/health/v1/health_pb.js";
import { FrontierService } from "../gen/raystack/frontier/v1beta1/frontier_pb.js";
import { Authenticator } from "./auth/authenticator.js";
import { adminTokenFile, bootstrapAdmin, databaseFile } from "./auth/bootstrap.js";
import { PasswordGuard } from "./auth/password-guard.js";
import { kStreamTicket, StreamTickets } from "./auth/stream-tickets.js";
import { type Clock, systemClock } from "./clock.js";
import type { Config } from "./config.js";
import { ERROR_DOMAIN } from "./errors.js";
import { authInterceptor, pathTenant, preauthenticator } from "./interceptors/auth.js";
import { clientFaultGate } from "./interceptors/client-faults.js";
import { kRoute } from "./interceptors/context.js";
import { errorMappingInterceptor } from "./interceptors/error-mapping.js";
import { Metrics } from "./interceptors/metrics.js";
import { logRefusal, requestLogInterceptor } from "./interceptors/request-log.js";
import { streamLimitInterceptor } from "./interceptors/stream-limits.js";
import {
  storeObserver,
  type Telemetry,
  telemetryInterceptor,
  withRequestTraceContext,
} from "./interceptors/telemetry.js";
import { startTracing } from "./interceptors/tracing.js";
import { legacyHandler } from "./legacy/adapter.js";
import { legacyAdapters } from "./legacy/index.js";
import type { Logger } from "./logger.js";
import { createRestTranscoder } from "./rest/transcoder.js";
import { consoleHandler } from "./server/console.js";
import { createGrpcUnaryHandlers } from "./server/grpc-unary.js";
import { createInvoker, type Invoker } from "./server/invoker.js";
import { type MetricsServer, metricsHandler, startMetricsServer } from "./server/metrics-endpoint.js";
import { registerRoutes, type Services, serviceRegistrations } from "./server/routes.js";
import { type RunningServer, requestContextValues, startServer } from "./server/server.js";
import { createIdentityAdmin } from "./service/admin-service.js";
import { createAuditService } from "./service/audit-service.js";
import { createFrontierService } from "./service/frontier-service.js";
import { createHealthService } from "./service/health-service.js";
import { limits } from "./service/limits.js";
import { PageTokens } from "./service/page-token.js";
import { createReflectionServices } from "./service/reflection-service.js";
import { SelfAudit, SelfAuditAction } from "./service/self-audit.js";
import { createTemplateAdmin } from "./service/template-admin.js";
import { TenantDirectory } from "./service/tenant-directory.js";
import { connectDatabase, type Database } from "./store/database.js";
import { EventFeed } from "./store/event-feed.js";
import { EventStore } from "./store/event-store.js";
import { GroupCommit } from "./store/group-commit.js";
import { IdentityStore } from "./store/identity-store.js";
import { sharedSecret } from "./store/secrets.js";
import { TemplateStore } from "./store/template-store.js";
import { eventLeafData } from "./vlog/leaf.js";
import { Checkpoints, createLogService } from "./vlog/log-service.js";
import { checkpointSigner } from "./vlog/signing-key.js";
import { TreeLog } from "./vlog/tree-log.js";

export interface App {
  server: RunningServer;
  database: Database;
  /** Runs the service's RPCs for the direct gRPC path, REST and the legacy APIs (tests call it directly too). */
  invoker: Invoker;
  /** The REST routes compiled from the google.api.http annotations, as "POST /v1/… → pkg.Service.Method". */
  restRoutes: string[];
  /** Where GET /metrics is served: the main port, or METRICS_PORT's. */
  metricsUrl: string;
  close(): Promise<void>;
}

export interface AppOptions {
  config: Config;
  logger: Logger;
  /** A PostgreSQL URL; main.ts supplies the embedded one when DATABASE_URL is unset. */
  databaseUrl: string;
  /** The migration role's URL: main.ts supplies the embedded owner's; else MIGRATION_DATABASE_URL. */
  migrationUrl?: string;
  clock?: Clock;
  /** Receives every span as it ends, whatever OTEL_* says (tests keep them in memory). */
  spanExporter?: SpanExporter;
}

/** Wires storage, handlers, interceptors and the server. Tests call this with port 0 and their own database. */
export async function startApp(options: AppOptions): Promise<App> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const database = await connectDatabase(options.databaseUrl, {
    poolSize: config.databasePoolSize,
    statementTimeoutMs: config.requestTimeoutMs,
    logger,
    migrationUrl: options.migrationUrl ?? config.migrationDatabaseUrl,
    requireLeastPrivilege: config.requireLeastPrivilege,
    settings: config.databaseUrl ? { url: "DATABASE_URL", migrationUrl: "MIGRATION_DATABASE_URL" } : undefined,
  });
  const pageTokens = new PageTokens(await sharedSecret(database.db, "page-token-key"));
  const telemetry: Telemetry = {
    metrics: new Metrics(
      { tenantLabels: config.metricsTenantLabels, poolSize: config.databasePoolSize },
      { queuedEvents: () => groupCommit.queued, tailStreams: () => feed.streams },
    ),
    tracing: config.tracing || options.spanExporter ? startTracing(options.spanExporter) : undefined,
  };
  const observer = storeObserver(telemetry);
  // The verifiable log's tree advances inside every append transaction; its leaf is the event as List returns it.
  const treeLog = config.verifiableLog ? new TreeLog(database.sql, eventLeafData) : undefined;
  const store = new EventStore(database.db, observer, treeLog);
  const groupCommit = new GroupCommit(store, clock, {
    maxBatch: config.groupCommitMaxBatch,
    queueLimit: config.ingestQueueLimit,
    flushes: config.groupCommitFlushes,
    observer,
  });
  const identities = new IdentityStore(database.db);
  const tenants = new TenantDirectory(identities);
  // At most 20 refusals a minute per tenant recorded one by one; the rest are counted into a summary.
  const selfAudit = new SelfAudit({ groupCommit, tenants, clock, logger, refusalsPerWindow: 20, windowMs: 60_000 });
  const bootstrapped = await bootstrapAdmin({
    store: identities,
    clock,
    logger,
    adminToken: config.adminToken,
    tokenFile: await adminTokenFile(config.dataDir, identities, config.databaseUrl === undefined),
  });
  let checkpoints: Checkpoints | undefined;
  if (treeLog) {
    // Events stored before the log existed, or while an instance ran without it, join the trees in sequence order.
    const added = await treeLog.catchUp(
      (q) => store.range(q),
      (tenant, err) =>
        logger.error({ tenant, err }, "this tenant's verifiable log disagrees with its events; its writes are refused"),
    );
    if (added > 0) logger.info({ events: added }, "added events to the verifiable log");
    const signer = await checkpointSigner({
      configured: config.logSigningKey,
      file: await databaseFile(config.dataDir, identities, config.databaseUrl === undefined, "log-signing-key"),
      db: database.db,
      logger,
    });
    checkpoints = new Checkpoints(treeLog, signer, clock, logger);
    checkpoints.start(config.logCheckpointIntervalMs);
  }
  // After the trees caught up: the service's own start-up records are appended like any event.
  for (const { change, credential } of bootstrapped) {
    const action = change === "installed" ? SelfAuditAction.CredentialCreate : SelfAuditAction.CredentialRevoke;
    await selfAudit.startupChange(action, credential);
  }
  const passwords = new PasswordGuard({
    failuresPerUser: config.passwordFailuresPerUser,
    failuresPerAddress: config.passwordFailuresPerAddress,
    maxDelayMs: config.passwordDelayMaxMs,
    concurrency: config.passwordHashConcurrency,
    queue: config.passwordHashQueue,
  });
  const authenticator = new Authenticator({
    store: identities,
    clock,
    logger,
    cacheMs: config.credentialCacheMs,
    passwords,
  });
  const templates = new TemplateStore(database.db, limits.templatesPerTenant);
  const tickets = new StreamTickets(clock);
  const feed = new EventFeed({ sql: database.sql, store, clock, logger, bufferEvents: config.tailBufferEvents });
  await feed.start();

  const shutdownController = new AbortController();
  // Every call in flight listens on it; the default cap of 10 listeners would warn at the 11th concurrent call.
  setMaxListeners(0, shutdownController.signal);
  const jsonOptions: ConnectRouterOptions["jsonOptions"] & { textDecoder: { decode(bytes: Uint8Array): string } } = {
    // An audit log must not silently drop a field a client thought it sent.
    ignoreUnknownFields: false,
    // Nor store U+FFFD for bytes that were not UTF-8: connect-es passes this decoder to its JSON parsing.
    textDecoder: new TextDecoder("utf-8", { fatal: true }),
  };
  // Shared by the router and the invoker (direct gRPC path, REST, legacy adapters): the same interceptors and limits.
  const routerOptions: ConnectRouterOptions = {
    // Outermost first.
    interceptors: [
      telemetryInterceptor(telemetry),
      requestLogInterceptor(logger),
      errorMappingInterceptor(logger),
      authInterceptor(authenticator, tenants, tickets, selfAudit),
      streamLimitInterceptor({ perCredential: config.tailStreamsPerCredential, total: config.tailStreamsTotal }),
    ],
    readMaxBytes: config.maxBodyBytes,
    writeMaxBytes: 64 * 1024 * 1024,
    maxTimeoutMs: 24 * 3600 * 1000,
    acceptCompression: [compressionGzip, compressionBrotli],
    shutdownSignal: shutdownController.signal,
    requestGate: clientFaultGate,
    jsonOptions,
  };
  const audit = createAuditService({
    store,
    log: createLogService(treeLog && checkpoints && { log: treeLog, checkpoints, store }),
    groupCommit,
    templates,
    feed,
    clock,
    pageTokens,
    tickets,
    tailMaxLifetimeMs: config.tailMaxLifetimeMs,
  });
  const services: Services = {
    audit,
    // The identity RPCs and the template RPCs make up AdminService.
    admin: {
      ...createIdentityAdmin({
        store: identities,
        tenants,
        authenticator,
        clock,
        selfAudit,
        sessionsPerUser: config.sessionsPerUser,
      }),
      ...createTemplateAdmin({ templates, clock, selfAudit }),
    } satisfies ServiceImpl<typeof AdminService>,
    frontier: createFrontierService({ audit, store }),
  };
  const router = createConnectRouter(routerOptions);
  registerRoutes(services)(router);
  // The standard gRPC services ride the same router, so they speak every RPC protocol and pass the interceptors.
  const draining = new AbortController();
  router.service(
    Health,
    createHealthService({
      services: [AuditService.typeName, AdminService.typeName, FrontierService.typeName],
      ready: () => database.ping(),
      draining: draining.signal,
    }),
  );
  const reflection = createReflectionServices(() => router.handlers.map((h) => h.service));
  router.service(ServerReflection, reflection.v1);
  router.service(ServerReflectionAlpha, reflection.v1alpha);
  const invoker = createInvoker(serviceRegistrations(services), routerOptions);
  const authenticate = preauthenticator(authenticator, selfAudit, logger);
  const rest = createRestTranscoder({
    invoker,
    maxBodyBytes: config.maxBodyBytes,
    errorDomain: ERROR_DOMAIN,
    contextValues: (req) => requestContextValues(req).set(kRoute, "rest"),
    authenticate: async (req, rpc, pathValue) => authenticate(req, rpc, await pathTenant(rpc, pathValue, tenants)),
    // Tail over SSE: `id:` is the event's sequence, which Last-Event-ID resumes after; ?ticket= authenticates it.
    sse: { eventId: "event.sequence", resumeField: "afterSequence", ticketParam: "ticket", ticketKey: kStreamTicket },
    // Frontier's gateway writes proto field names (created_at) and every field, as its REST clients expect.
    responseJson: new Map([[FrontierService.typeName, { useProtoFieldName: true, alwaysEmitImplicit: true }]]),
    onRefused: (req, status, error) => logRefusal(logger, req, { status, error }),
    onInternalError: (err) => logger.error({ err }, "REST transcoding failed"),
  });
  const scrape = metricsHandler(() => telemetry.metrics.render(), logger);
  let metricsServer: MetricsServer | undefined;
  if (config.metricsPort !== undefined) {
    metricsServer = await startMetricsServer({
      port: config.metricsPort,
      host: config.host,
      handler: scrape,
      logger,
    });
  }
  const server = await startServer({
    config,
    logger,
    router,
    grpcUnary: config.grpcFastPath
      ? createGrpcUnaryHandlers(invoker, invoker.methods, {
          ...routerOptions,
          writeUnknownFields: routerOptions.binaryOptions?.writeUnknownFields,
        })
      : undefined,
    fallback: consoleHandler(
      legacyHandler(
        legacyAdapters(invoker, {
          tenants,
          authenticate,
          maxBodyBytes: config.maxBodyBytes,
          logger,
          clock,
          listMaxBytes: config.legacyListMaxBytes,
        }),
        {
          logger,
          next: rest.handle,
          onRefused: (req, fields) => logRefusal(logger, req, fields),
          inTraceContext: withRequestTraceContext,
        },
      ),
    ),
    shutdownController,
    ready: () => database.ping(),
    metrics: metricsServer ? undefined : scrape,
    warnings: database.warnings,
  });
  return {
    server,
    database,
    invoker,
    restRoutes: rest.routes,
    metricsUrl: metricsServer ? `http://127.0.0.1:${metricsServer.port}/metrics` : `${server.url}/metrics`,
    async close() {
      // Health turns NOT_SERVING (and Watch streams say so) while the port still accepts: balancers stop routing here.
      draining.abort();
      // Tail streams never finish on their own: end them first (they resume by sequence) so the drain is quick.
      await feed.close();
      await server.close();
      // The refusals counted since the last summary, then whatever is still queued.
      await selfAudit.close();
      // Calls cut off by the grace period may have left events queued: commit them before the pool closes.
      await groupCommit.idle();
      await checkpoints?.stop();
      await metricsServer?.close();
      await telemetry.tracing?.shutdown();
      await database.close();
    },
  };
}
