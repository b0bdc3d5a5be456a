import { readFileSync } from "node:fs";
import path from "node:path";
import postgres from "postgres";
import { createLogger } from "../../src/logger.js";
import { connectDatabase, type Database } from "../../src/store/database.js";
import { startEmbeddedPostgres } from "../../src/store/embedded.js";
import { processTree } from "./system.js";

export interface BenchServer {
  /** URL of the server's maintenance database, for creating and dropping the bench's own. */
  url: string;
  /**
   * PostgreSQL's processes: with the embedded server, all of them; with DATABASE_URL (a server other work may share),
   * the backends connected to the bench's own databases plus the WAL writer, checkpointer and background writer. Read
   * from /proc, so only when the server runs on this machine.
   */
  pids(): number[];
  /** The URL of another database on the same server. */
  databaseUrl(name: string): string;
  stop(): Promise<void>;
}

/**
 * DATABASE_URL when set, else an embedded PostgreSQL in `.data/bench` that is kept between runs, so the
 * million-event List data set is loaded once.
 */
export async function startBenchServer(): Promise<BenchServer> {
  const given = process.env.DATABASE_URL;
  const logger = createLogger("warn");
  let url: string;
  let stop = async () => {};
  let pids = (): number[] => [];
  if (given) {
    url = given;
    const watched = startBackendWatch(given);
    pids = watched.pids;
    stop = watched.stop;
  } else {
    const dataDir = path.resolve(".data/bench");
    const embedded = await startEmbeddedPostgres(dataDir, logger);
    url = embedded.url;
    stop = embedded.stop;
    const postmaster = Number(readFileSync(path.join(dataDir, "pg", "postmaster.pid"), "utf8").split("\n", 1)[0]);
    pids = () => processTree(postmaster);
  }
  return {
    url,
    pids,
    databaseUrl(name) {
      const u = new URL(url);
      u.pathname = `/${name}`;
      return u.toString();
    },
    stop,
  };
}

/** The bench's databases on a shared server: only their backends count as the bench's PostgreSQL. */
const benchDatabases = new Set<string>();

/** Polls pg_stat_activity twice a second for the backends that serve the bench; pids() returns the latest list. */
function startBackendWatch(url: string): { pids(): number[]; stop(): Promise<void> } {
  const watcher = postgres(url, { max: 1, onnotice: () => {} });
  let current: number[] = [];
  let stopped = false;
  const poll = async () => {
    while (!stopped) {
      const rows = await watcher<{ pid: number }[]>`
        select pid from pg_stat_activity
        where pid <> pg_backend_pid()
          and (datname = any(${[...benchDatabases]}::text[])
            or backend_type in ('walwriter', 'checkpointer', 'background writer'))`.catch(() => []);
      current = rows.map((r) => r.pid);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  const polling = poll();
  return {
    pids: () => current,
    stop: async () => {
      stopped = true;
      await polling;
      await watcher.end();
    },
  };
}

/** Creates the database if it is missing and applies the service's migrations to it. */
export async function openDatabase(server: BenchServer, name: string, poolSize = 4): Promise<Database> {
  benchDatabases.add(name);
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${name}`;
    if (!exists) await admin`create database ${admin(name)}`;
  } finally {
    await admin.end();
  }
  return connectDatabase(server.databaseUrl(name), {
    poolSize,
    statementTimeoutMs: 600_000,
    logger: createLogger("warn"),
  });
}

export async function dropDatabase(server: BenchServer, name: string): Promise<void> {
  const admin = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    await admin`drop database if exists ${admin(name)} with (force)`;
  } finally {
    await admin.end();
  }
}
