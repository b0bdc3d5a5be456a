import type { ConnectRouter } from "@connectrpc/connect";
import { AuditService } from "../gen/audit/v1/audit_service_pb.js";
import { type Clock, systemClock } from "./clock.js";
import type { Config } from "./config.js";
import { errorMappingInterceptor } from "./interceptors/error-mapping.js";
import { requestLogInterceptor } from "./interceptors/request-log.js";
import type { Logger } from "./logger.js";
import { type RunningServer, startServer } from "./server/server.js";
import { createAuditService } from "./service/audit-service.js";
import { PageTokens } from "./service/page-token.js";
import { connectDatabase, type Database } from "./store/database.js";
import { EventStore } from "./store/event-store.js";
import { sharedSecret } from "./store/secrets.js";

export interface App {
  server: RunningServer;
  database: Database;
  close(): Promise<void>;
}

export interface AppOptions {
  config: Config;
  logger: Logger;
  /** A PostgreSQL URL; main.ts supplies the embedded one when DATABASE_URL is unset. */
  databaseUrl: string;
  clock?: Clock;
}

/** Wires storage, handlers, interceptors and the server. Tests call this with port 0 and their own database. */
export async function startApp(options: AppOptions): Promise<App> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const database = await connectDatabase(options.databaseUrl, {
    poolSize: config.databasePoolSize,
    statementTimeoutMs: config.requestTimeoutMs,
    logger,
  });
  const pageTokens = new PageTokens(await sharedSecret(database.db, "page-token-key"));
  const store = new EventStore(database.db);

  const routes = (router: ConnectRouter) => {
    router.service(AuditService, createAuditService({ store, clock, pageTokens }));
  };
  const server = await startServer({
    config,
    logger,
    routes,
    interceptors: [requestLogInterceptor(logger), errorMappingInterceptor(logger)],
    ready: () => database.ping(),
  });
  return {
    server,
    database,
    async close() {
      await server.close();
      await database.close();
    },
  };
}
