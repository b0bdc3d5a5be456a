import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant, type TenantTokens } from "../support/clients.js";
import { holdTenant, metric, until } from "../support/held-writes.js";

// The service's life as docs/reliability.md and the README describe it: /readyz answers 503 while it drains, calls
// still running when SHUTDOWN_GRACE_MS ends are cancelled, and `npm start` with no DATABASE_URL runs the embedded
// PostgreSQL, which SIGINT (Ctrl-C) stops with the service, keeping every acknowledged event for the next start.

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Resolves once the port refuses new connections: the server has begun to close. */
async function untilPortClosed(port: number): Promise<void> {
  for (;;) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("error", () => resolve(true));
    });
    if (refused) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A write stuck behind the held lock, and the app's active-call gauge showing it is running. */
async function stuckWrite(app: TestApp, acme: TenantTokens) {
  const call = clientFor(AuditService, app, "connect", acme.writer)
    .batchCreate({ events: [{ id: "in-flight", action: "lifecycle.held" }] })
    .then(
      () => "acknowledged",
      (e: unknown) => ConnectError.from(e),
    );
  await until(
    "the write waits on the lock",
    async () => (await metric(app.app.metricsUrl, "audit_db_operations_in_flight", { operation: "append" })) === 1,
  );
  // Wrapped: an async function returning the promise itself would wait for it.
  return { call };
}

async function appWithTenant(env: Record<string, string>) {
  const app = await startTestApp({ env });
  const acme = await provisionTenant(app, "acme");
  await clientFor(AuditService, app, "connect", acme.writer).create({ event: { action: "lifecycle.first" } });
  return { app, acme };
}

describe("draining", () => {
  test("/readyz answers 503 while calls drain, and the call in flight still finishes", async () => {
    const { app, acme } = await appWithTenant({ SHUTDOWN_GRACE_MS: "30000" });
    const held = await holdTenant(app.databaseUrl, "acme");
    let closed: Promise<void> | undefined;
    try {
      const { call } = await stuckWrite(app, acme);
      // A connection made before the drain, used during it (as a load balancer's kept-alive probe connection is).
      const probe = net.connect(app.port, "127.0.0.1");
      await new Promise((resolve) => probe.once("connect", resolve));
      const readyz = () =>
        new Promise<string>((resolve) => {
          let text = "";
          probe.on("data", (d) => {
            text += d.toString("latin1");
          });
          probe.once("close", () => resolve(text));
          probe.write("GET /readyz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
        });
      // Positive control: ready before.
      expect((await fetch(`${app.url}/readyz`)).status).toBe(200);

      closed = app.close();
      await untilPortClosed(app.port);
      const answer = await readyz();
      expect(answer).toMatch(/^HTTP\/1\.1 503 /);
      expect(answer).toContain('{"status":"shutting down"}');

      // The drain waits for the call: it is released and acknowledged, and only then does close() finish.
      let finished = false;
      void closed.then(() => {
        finished = true;
      });
      expect(finished).toBe(false);
      await held.release();
      expect(await call).toBe("acknowledged");
      await closed;
      expect(app.logs.filter((l) => l.includes("grace period over"))).toEqual([]);
    } finally {
      await held.release();
      await (closed ?? app.close());
    }
  });

  test("calls still running when SHUTDOWN_GRACE_MS ends are cancelled, and the service stops", async () => {
    const GRACE_MS = 1500;
    const { app, acme } = await appWithTenant({ SHUTDOWN_GRACE_MS: String(GRACE_MS) });
    const held = await holdTenant(app.databaseUrl, "acme");
    let closed: Promise<void> | undefined;
    try {
      const { call } = await stuckWrite(app, acme);
      const started = performance.now();
      closed = app.close();
      const outcome = await call;
      const cancelledAfter = performance.now() - started;
      // Not acknowledged: the client learns it must retry (the id makes a retry safe).
      expect(outcome).toBeInstanceOf(ConnectError);
      expect([Code.Unavailable, Code.Canceled, Code.Aborted]).toContain((outcome as ConnectError).code);
      expect(cancelledAfter).toBeGreaterThanOrEqual(GRACE_MS - 50);
      expect(cancelledAfter).toBeLessThan(GRACE_MS + 10_000);
      const warning = app.logs.map((l) => JSON.parse(l)).find((l) => l.msg?.startsWith("grace period over"));
      expect(warning?.level).toBe(40);
      console.log(
        `grace period ${GRACE_MS} ms: the call in flight ended ${Math.round(cancelledAfter)} ms after close() ` +
          `with ${Code[(outcome as ConnectError).code]}: ${(outcome as ConnectError).rawMessage}`,
      );
    } finally {
      await held.release();
      await (closed ?? app.close());
    }
  });
});

describe("npm start without DATABASE_URL", () => {
  const children = new Set<ChildProcess>();
  const cleanups: string[] = [];
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    for (const dir of cleanups) await rm(dir, { recursive: true, force: true });
  });

  /** `npm start` (exec node --import tsx src/main.ts) with a clean environment: nothing inherited but PATH and HOME. */
  function npmStart(dataDir: string) {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: "0", HOST: "127.0.0.1", DATA_DIR: dataDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(child);
    const lines: Record<string, unknown>[] = [];
    const stderr: string[] = [];
    const waiters = new Set<() => void>();
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once("exit", (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
        for (const wake of waiters) wake();
      }),
    );
    let rest = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts.filter(Boolean)) lines.push(JSON.parse(line));
      for (const wake of waiters) wake();
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
    /** The first log line with this message, once it is written. */
    const line = (msg: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const check = () => {
          const found = lines.find((l) => l.msg === msg);
          if (found) {
            waiters.delete(check);
            resolve(found);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiters.delete(check);
            reject(new Error(`exited before logging "${msg}": ${JSON.stringify(lines)} ${stderr.join("")}`));
          }
        };
        waiters.add(check);
        check();
      });
    return { child, lines, stderr, exited, line };
  }

  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  test("runs on its own PostgreSQL; SIGINT stops both, cleanly, and the next start has every event", async () => {
    // DATA_DIR under a directory the postgres user can enter (as root PostgreSQL runs as postgres; a closed one
    // would move the data to /var/lib/audit-trail, which first-run.test.ts covers).
    const outer = await mkdtemp(path.join(tmpdir(), "audit-trail-lifecycle-"));
    cleanups.push(outer);
    await chmod(outer, 0o755);
    const dataDir = path.join(outer, "data");

    const first = npmStart(dataDir);
    const pg = await first.line("embedded PostgreSQL started");
    const listening = await first.line("listening");
    const url = `http://127.0.0.1:${listening.port}`;
    const adminToken = (await readFile(path.join(dataDir, "admin-token"), "utf8")).trim();
    const acme = await provisionTenant({ url, adminToken }, "acme");
    const { events } = await clientFor(AuditService, { url }, "grpc", acme.writer).batchCreate({
      events: [
        { id: "kept-1", action: "lifecycle.kept" },
        { id: "kept-2", action: "lifecycle.kept" },
      ],
    });
    expect(events).toHaveLength(2);
    expect(isAlive(pg.pid as number)).toBe(true);

    first.child.kill("SIGINT");
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.lines.find((l) => l.msg === "shutting down")?.reason).toBe("SIGINT");
    expect(first.lines.some((l) => l.msg === "stopped")).toBe(true);
    expect(first.lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(first.stderr.join("")).toBe("");
    // PostgreSQL was stopped, not left behind: its process is gone (stop() waits for it) and the lock released.
    expect(isAlive(pg.pid as number)).toBe(false);
    await expect(readFile(path.join(dataDir, "service.pid"))).rejects.toMatchObject({ code: "ENOENT" });

    // The next start finds a cleanly stopped database (no orphan to take over) holding the events.
    const second = npmStart(dataDir);
    const secondListening = await second.line("listening");
    try {
      expect(second.lines.some((l) => String(l.msg).includes("taking over"))).toBe(false);
      const { events: listed } = await clientFor(
        AuditService,
        { url: `http://127.0.0.1:${secondListening.port}` },
        "connect",
        acme.reader,
      ).list({ actions: ["lifecycle.kept"] });
      expect(listed.map((e) => e.id).sort()).toEqual(["kept-1", "kept-2"]);
    } finally {
      const secondPg = (await second.line("embedded PostgreSQL started")).pid as number;
      second.child.kill("SIGTERM");
      expect(await second.exited).toEqual({ code: 0, signal: null });
      expect(isAlive(secondPg)).toBe(false);
    }
  }, 300_000);
});
