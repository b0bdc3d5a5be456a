import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateSignerKey } from "../../src/vlog/note.js";
import { childEnv } from "../support/child-env.js";
import type { ServiceAddress } from "../support/clients.js";

/** The checkpoint signing key of every service this test process starts (each has its own DATA_DIR). */
const signingKey = generateSignerKey("audit-trail.test");

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The service running as its own process (`node --import tsx src/main.ts`), as an operator would start it. */
export interface ServiceProcess extends ServiceAddress {
  pid: number;
  port: number;
  /** Its stdout, one JSON log line per entry; stderr lines too, prefixed `stderr: `. */
  logs: string[];
  exited: Promise<ExitStatus>;
  /** Whether the process is still running. */
  alive(): boolean;
  signal(signal: NodeJS.Signals): void;
  /** Resident memory from /proc, in bytes. */
  rssBytes(): Promise<number>;
}

export interface ServiceProcessOptions {
  databaseUrl: string;
  adminToken?: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  /** Node's arguments; by default the TypeScript entry through tsx (`npm start`). */
  nodeArgs?: string[];
  /** A command run instead of this process's node with nodeArgs (e.g. `npm run start:prod`'s); its NODE is that node. */
  command?: string[];
}

const children = new Set<ChildProcess>();

// A test that fails or times out must not leave a service behind; neither may a worker that dies abruptly.
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/** Starts the service on a free port and resolves once it logs "listening". */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const adminToken = options.adminToken ?? `at_rel_${randomBytes(24).toString("base64url")}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), "audit-trail-rel-"));
  const [command, ...args] = options.command ?? [
    process.execPath,
    ...(options.nodeArgs ?? ["--import", "tsx", "src/main.ts"]),
  ];
  const child = spawn(command as string, args, {
    cwd: repoRoot,
    env: childEnv({
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      DATA_DIR: dataDir,
      SHUTDOWN_GRACE_MS: "5000",
      // Every process of a test signs checkpoints with one key, as instances sharing a database must.
      LOG_SIGNING_KEY: signingKey,
      NODE: process.execPath,
      ...options.env,
      DATABASE_URL: options.databaseUrl,
      AUDIT_ADMIN_TOKEN: adminToken,
    }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once("exit", (code, signal) => {
      children.delete(child);
      void rm(dataDir, { recursive: true, force: true });
      resolve({ code, signal });
    });
  });

  const logs: string[] = [];
  let port: number | undefined;
  let onListening: (() => void) | undefined;
  lines(child.stdout, (line) => {
    logs.push(line);
    if (port === undefined && line.includes('"listening"')) {
      port = (JSON.parse(line) as { port: number }).port;
      onListening?.();
    }
  });
  lines(child.stderr, (line) => logs.push(`stderr: ${line}`));

  const timeoutMs = options.startTimeoutMs ?? 60_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the service did not start within ${timeoutMs} ms:\n${logs.slice(-20).join("\n")}`));
    }, timeoutMs);
    onListening = () => {
      clearTimeout(timer);
      resolve();
    };
    void exited.then((status) => {
      clearTimeout(timer);
      reject(new Error(`the service exited (${JSON.stringify(status)}) before listening:\n${logs.join("\n")}`));
    });
  });
  const listeningPort = port as number;
  const pid = child.pid as number;
  return {
    pid,
    port: listeningPort,
    url: `http://127.0.0.1:${listeningPort}`,
    adminToken,
    logs,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    signal: (signal) => child.kill(signal),
    async rssBytes() {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
      if (!kb) throw new Error("no VmRSS in /proc status");
      return Number(kb) * 1024;
    },
  };
}

/** Kills (SIGKILL) every service process still running and waits for them to go. For afterAll. */
export async function killAllServiceProcesses(): Promise<void> {
  const waits = [...children].map(
    (child) =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGKILL");
      }),
  );
  await Promise.all(waits);
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const line of parts) if (line) onLine(line);
  });
}
