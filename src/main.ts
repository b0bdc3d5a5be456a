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

process.on("SIGTERM", () => void stop("SIGTERM"));
process.on("SIGINT", () => void stop("SIGINT"));

main().catch(async (error) => {
  logger.fatal({ err: error }, "failed to start");
  await embedded?.stop().catch(() => {});
  process.exit(1);
});
