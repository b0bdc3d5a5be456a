import { mkdirSync, mkdtempSync, readdirSync, statSync, watch, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { startEmbeddedPostgres } from "../../src/store/embedded.js";

// The embedded PostgreSQL's start-up failures: each leaves no secret behind and says what to do.
// test/reliability/first-run.test.ts drives the successful starts through `npm start`.
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "audit-trail-embedded-"));
  dirs.push(dir);
  return dir;
}

const pgPasswordFilesInTmp = () => readdirSync(tmpdir()).filter((name) => name.startsWith("pg-password-"));

describe("starting the embedded PostgreSQL", () => {
  it("gives initdb the superuser's password in a 0600 file in DATA_DIR, removed at once, and none in /tmp", async () => {
    const dataDir = tempDir();
    const seen: string[] = [];
    // The file lives only while initdb runs: look at it the moment it appears, wherever it appears.
    const watchers = [dataDir, tmpdir()].map((dir) =>
      watch(dir, (_event, name) => {
        if (!name?.startsWith("pg-initdb-password") && !name?.startsWith("pg-password-")) return;
        const file = path.join(dir, name);
        try {
          seen.push(`${file} ${(statSync(file).mode & 0o777).toString(8)}`);
        } catch {
          seen.push(`${file} gone`);
        }
      }),
    );
    try {
      const embedded = await startEmbeddedPostgres(dataDir, createLogger("silent"));
      await embedded.stop();
    } finally {
      for (const watcher of watchers) watcher.close();
    }
    console.log(`initdb's password file: ${[...new Set(seen)].join(", ")}`);
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([`${dataDir}/pg-initdb-password 600`, `${dataDir}/pg-initdb-password gone`]));
    expect(statSync(path.join(dataDir, "pg-password")).mode & 0o777).toBe(0o600);
    expect(readdirSync(dataDir).sort()).toEqual(["pg", "pg-app-password", "pg-password"]);
  });

  it("leaves no copy of the superuser's password behind when initdb fails", async () => {
    const dataDir = tempDir();
    // initdb refuses a data directory that is not empty.
    mkdirSync(path.join(dataDir, "pg"));
    writeFileSync(path.join(dataDir, "pg", "stray"), "x");
    const before = pgPasswordFilesInTmp();
    await expect(startEmbeddedPostgres(dataDir, createLogger("silent"))).rejects.toThrow(
      /initdb failed for .*: .*not empty/s,
    );
    expect(readdirSync(dataDir).sort()).toEqual(["pg", "pg-app-password", "pg-password"]);
    expect(pgPasswordFilesInTmp().filter((f) => !before.includes(f))).toEqual([]);
  });

  it.runIf(process.getuid?.() === 0)(
    "as root, fails at once naming the directory and the fix when PostgreSQL's existing data is out of reach",
    async () => {
      const closed = tempDir(); // 0700, like /root
      const dataDir = path.join(closed, "data");
      mkdirSync(path.join(dataDir, "pg"), { recursive: true });
      await expect(startEmbeddedPostgres(dataDir, createLogger("silent"))).rejects.toThrow(
        `DATA_DIR="${dataDir}": PostgreSQL runs as the postgres user, who cannot reach ${dataDir}/pg: ${closed} is closed to other users. ` +
          `Move DATA_DIR to a directory the postgres user can reach, or let it through: chmod o+x ${closed}`,
      );
      // It stopped before writing anything, and let go of DATA_DIR (no service.pid).
      expect(readdirSync(dataDir)).toEqual(["pg"]);
    },
  );
});
