/**
 * The Node load generator, for when h2load is not installed (and for requests whose body differs per connection).
 * Runs in its own process so its CPU is counted apart from the bench's. Reads a LoadJob from the JSON file named by
 * argv[2], prints a WorkerResult as JSON on stdout.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";

export interface LoadJob {
  url: string;
  http1: boolean;
  /** Check grpc-status in the trailers, not only the HTTP status. */
  grpc: boolean;
  /** Connection i sends requests[i % length]; bodies in base64. */
  requests: { headers: Record<string, string>; body: string }[];
  connections: number;
  streamsPerConnection: number;
  seconds: number;
}

export interface WorkerResult {
  ok: number;
  failed: number;
  /** The first few failures, e.g. "http 404" or "grpc-status 3: ...". */
  failures: string[];
  seconds: number;
  latenciesMs: number[];
  cpuSeconds: number;
}

async function run(job: LoadJob): Promise<WorkerResult> {
  const url = new URL(job.url);
  const requests = job.requests.map((r) => ({ headers: r.headers, body: Buffer.from(r.body, "base64") }));
  const latencies: number[] = [];
  const failures: string[] = [];
  let ok = 0;
  let failed = 0;
  const fail = (why: string) => {
    failed++;
    if (failures.length < 5) failures.push(why);
  };
  const cpuAtStart = process.cpuUsage();
  const started = performance.now();
  const deadline = started + job.seconds * 1000;

  const loops: Promise<void>[] = [];
  if (job.http1) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: job.connections });
    for (let c = 0; c < job.connections; c++) {
      const { headers, body } = requests[c % requests.length] as (typeof requests)[number];
      loops.push(
        (async () => {
          while (performance.now() < deadline) {
            const t0 = performance.now();
            const status = await new Promise<number>((resolve) => {
              const req = http.request(
                url,
                { method: "POST", agent, headers: { ...headers, "content-length": body.length } },
                (res) => {
                  res.resume();
                  res.on("end", () => resolve(res.statusCode ?? 0));
                },
              );
              req.on("error", () => resolve(-1));
              req.end(body);
            });
            if (status >= 200 && status < 300) {
              ok++;
              latencies.push(performance.now() - t0);
            } else fail(`http ${status}`);
          }
        })(),
      );
    }
    await Promise.all(loops);
    agent.destroy();
  } else {
    const sessions = Array.from({ length: job.connections }, () => {
      const session = http2.connect(url.origin);
      session.on("error", (error) => fail(`session: ${error.message}`));
      return session;
    });
    for (const [c, session] of sessions.entries()) {
      const { headers, body } = requests[c % requests.length] as (typeof requests)[number];
      for (let s = 0; s < job.streamsPerConnection; s++) {
        loops.push(
          (async () => {
            while (performance.now() < deadline) {
              const t0 = performance.now();
              if (session.destroyed) {
                fail("session destroyed");
                break;
              }
              const problem = await new Promise<string | undefined>((resolve) => {
                const stream = session.request({
                  ":method": "POST",
                  ":path": url.pathname,
                  ...headers,
                });
                let status = 0;
                let grpcStatus: string | undefined;
                let grpcMessage = "";
                stream.on("response", (headers) => {
                  status = Number(headers[":status"]);
                  grpcStatus = headers["grpc-status"] as string | undefined;
                });
                stream.on("trailers", (trailers) => {
                  grpcStatus = trailers["grpc-status"] as string | undefined;
                  grpcMessage = String(trailers["grpc-message"] ?? "");
                });
                stream.on("data", () => {});
                stream.on("error", (error) => resolve(error.message));
                stream.on("close", () => {
                  if (status < 200 || status >= 300) resolve(`http ${status}`);
                  else if (job.grpc && grpcStatus !== "0")
                    resolve(`grpc-status ${grpcStatus}: ${decodeURIComponent(grpcMessage)}`);
                  else resolve(undefined);
                });
                stream.end(body);
              });
              if (problem === undefined) {
                ok++;
                latencies.push(performance.now() - t0);
              } else fail(problem);
            }
          })(),
        );
      }
    }
    await Promise.all(loops);
    for (const session of sessions) session.close();
  }
  const cpu = process.cpuUsage(cpuAtStart);
  return {
    ok,
    failed,
    failures,
    seconds: (performance.now() - started) / 1000,
    latenciesMs: latencies,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

const job = JSON.parse(readFileSync(process.argv[2] as string, "utf8")) as LoadJob;
process.stdout.write(JSON.stringify(await run(job)));
