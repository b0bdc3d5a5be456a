import http from "node:http";
import type net from "node:net";
import type { Logger } from "../logger.js";
import type { NodeHandler } from "./listener.js";

/** The exposition a scrape gets. */
export type RenderMetrics = () => Promise<{ contentType: string; body: string }>;

/** GET (or HEAD) /metrics in the Prometheus text format; other methods 405. */
export function metricsHandler(render: RenderMetrics, logger: Logger): NodeHandler {
  return (req, res) => {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      (res as http.ServerResponse).writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" });
      res.end("GET /metrics\n");
      return;
    }
    render().then(
      ({ contentType, body }) => {
        (res as http.ServerResponse).writeHead(200, {
          "content-type": contentType,
          "content-length": Buffer.byteLength(body),
          "cache-control": "no-store",
        });
        if (head) res.end();
        else res.end(body);
      },
      (error: unknown) => {
        logger.error({ err: error }, "metrics collection failed");
        (res as http.ServerResponse).writeHead(500, { "content-type": "text/plain" });
        res.end("metrics collection failed\n");
      },
    );
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** A port of its own for /metrics (METRICS_PORT), so it can stay off the public listener; every other path is 404. */
export async function startMetricsServer(options: {
  port: number;
  host: string;
  handler: NodeHandler;
  logger: Logger;
}): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if ((req.url ?? "").split("?", 1)[0] === "/metrics") options.handler(req, res);
    else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found: only /metrics is served here\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  options.logger.info({ port }, "metrics listening");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
