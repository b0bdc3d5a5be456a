import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { createLogger } from "../../src/logger.js";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../../src/store/embedded.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** A PostgreSQL server URL on which tests may create and drop their own databases. */
    serverUrl: string;
  }
}

/**
 * One PostgreSQL server for the run: DATABASE_URL when set, else an embedded one in a temporary directory.
 * Each test file then creates its own database on it (test/support/database.ts) and drops it when done.
 */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedDatabase | undefined;
  let dir: string | undefined;
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    dir = await mkdtemp(path.join(tmpdir(), "audit-trail-test-"));
    embedded = await startEmbeddedPostgres(dir, createLogger("warn"));
    serverUrl = embedded.url;
  }
  console.log(`tests use PostgreSQL at ${serverUrl.replace(/:[^:@/]*@/, ":***@")}${embedded ? " (embedded)" : ""}`);
  project.provide("serverUrl", serverUrl);
  return async () => {
    await embedded?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
}
