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
  // The PID to stop it by: `npm start` runs this process in place of its shell (exec), and npm passes SIGTERM on.
  logger.info({ pid: process.pid }, `starting; stop with kill ${process.pid} (SIGTERM) or Ctrl-C`);
  if (config.databaseUrl) {
    app = await startApp({ config, logger, databaseUrl: config.databaseUrl });
    return;
  }
  embedded = await startEmbeddedPostgres(config.dataDir, logger);
  // Nothing would bring the database back: stop, so that whatever runs the service can restart it.
  void embedded.lost.then(() => stop("embedded PostgreSQL exited", 1));
  // Migrations run as the database's owner; the service itself only holds scripts/app-role.sql's grants.
  app = await startApp({ config, logger, databaseUrl: embedded.appUrl, migrationUrl: embedded.url });
}

async function stop(reason: string, exitCode = 0) {
  if (stopping) return;
  stopping = true;
  logger.info({ reason }, "shutting down");
  try {
    await app?.close();
    await embedded?.stop();
    logger.info("stopped");
    process.exit(exitCode);
  } catch (error) {
    logger.error({ err: error }, "unclean shutdown");
    process.exit(1);
  }
}

for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => void stop(signal));

main().catch(async (error) => {
  await embedded?.stop().catch(() => {});
  exitIfConfigError(error);
  logger.fatal({ err: error }, "failed to start");
  process.exit(1);
});
