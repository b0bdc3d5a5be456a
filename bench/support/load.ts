import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { LoadJob, WorkerResult } from "../load-worker.js";
import { round } from "./system.js";

const run = promisify(execFile);
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), "../load-worker.ts");

export interface LoadSpec {
  url: string;
  http1: boolean;
  grpc: boolean;
  /** Connection i sends requests[i % length]; h2load can only send one. */
  requests: { headers: Record<string, string>; body: Buffer }[];
  connections: number;
  streamsPerConnection: number;
  seconds: number;
}

export interface LoadResult {
  tool: "h2load" | "node";
  ok: number;
  failed: number;
  failures: string[];
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU seconds the load generator used. */
  cpuSeconds: number;
}

const h2loadInstalled = spawnSync("h2load", ["--version"]).status === 0;

/** h2load when it is installed and can send the spec's one body (BENCH_LOADGEN=node forces the Node generator). */
export function loadTool(spec: LoadSpec): "h2load" | "node" {
  if (process.env.BENCH_LOADGEN === "node") return "node";
  return h2loadInstalled && spec.requests.length === 1 ? "h2load" : "node";
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return loadTool(spec) === "h2load" ? runH2load(spec) : runNode(spec);
}

async function runNode(spec: LoadSpec): Promise<LoadResult> {
  const job: LoadJob = {
    ...spec,
    requests: spec.requests.map((r) => ({ headers: r.headers, body: r.body.toString("base64") })),
  };
  const dir = await mkdtemp(path.join(tmpdir(), "bench-node-load-"));
  try {
    const jobFile = path.join(dir, "job.json");
    await writeFile(jobFile, JSON.stringify(job));
    const { stdout } = await run(process.execPath, ["--import", "tsx", WORKER, jobFile], {
      maxBuffer: 256 * 1024 * 1024,
    });
    const r = JSON.parse(stdout) as WorkerResult;
    return summarise("node", r.ok, r.failed, r.failures, r.seconds, r.latenciesMs, r.cpuSeconds);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * h2load reports per-request latency only in its log file, and counts any HTTP 2xx as success: for gRPC the caller
 * checks what was stored. CPU comes from bash's `times`, which includes the waited-for h2load.
 */
async function runH2load(spec: LoadSpec): Promise<LoadResult> {
  const dir = await mkdtemp(path.join(tmpdir(), "bench-h2load-"));
  try {
    const bodyFile = path.join(dir, "body");
    const logFile = path.join(dir, "log");
    const [request] = spec.requests;
    if (!request) throw new Error("no request to send");
    await writeFile(bodyFile, request.body);
    const args = [
      ...(spec.http1 ? ["--h1"] : []),
      "-c",
      String(spec.connections),
      "-m",
      String(spec.http1 ? 1 : spec.streamsPerConnection),
      "-D",
      String(spec.seconds),
      "-d",
      bodyFile,
      `--log-file=${logFile}`,
      ...Object.entries(request.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
      spec.url,
    ];
    const quoted = args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
    const { stdout } = await run("bash", ["-c", `h2load ${quoted} && times`], { maxBuffer: 64 * 1024 * 1024 });
    const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(stdout);
    const finished = /finished in ([\d.]+)s/.exec(stdout);
    const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
    if (!requests || !finished) throw new Error(`unexpected h2load output:\n${stdout}`);
    // `times` prints the shell's, then its children's, user and system time: "0m1.234s 0m0.567s".
    const timesLines = stdout.trim().split("\n").slice(-1)[0] ?? "";
    const cpuSeconds = [...timesLines.matchAll(/(\d+)m([\d.]+)s/g)].reduce(
      (sum, m) => sum + Number(m[1]) * 60 + Number(m[2]),
      0,
    );
    const latencies: number[] = [];
    for (const line of (await readFile(logFile, "utf8")).split("\n")) {
      const [, code, micros] = line.split("\t");
      if (code && Number(code) >= 200 && Number(code) < 300) latencies.push(Number(micros) / 1000);
    }
    const ok = Number(status?.[1] ?? 0);
    const failed = Number(requests[3]) - ok;
    const failures = failed > 0 ? [`h2load: ${status?.[0] ?? "no status line"}, ${requests[0]}`] : [];
    return summarise("h2load", ok, failed, failures, Number(finished[1]), latencies, cpuSeconds);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function summarise(
  tool: LoadResult["tool"],
  ok: number,
  failed: number,
  failures: string[],
  seconds: number,
  latencies: number[],
  cpuSeconds: number,
): LoadResult {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return {
    tool,
    ok,
    failed,
    failures,
    seconds: round(seconds, 2),
    perSecond: round(ok / seconds, 0),
    p50Ms: round(at(0.5), 2),
    p99Ms: round(at(0.99), 2),
    cpuSeconds: round(cpuSeconds, 2),
  };
}

/** A gRPC length-prefixed message: no compression flag, 4-byte big-endian length, the protobuf bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}
