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
  /** PostgreSQL's processes, when the bench runs it (embedded); unknown for DATABASE_URL. */
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

/** Creates the database if it is missing and applies the service's migrations to it. */
export async function openDatabase(server: BenchServer, name: string, poolSize = 4): Promise<Database> {
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
