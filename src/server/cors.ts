import type http from "node:http";
import { cors } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import type { NodeHandler } from "./listener.js";

// REST routes add the methods Connect, gRPC-web and the health checks do not use.
const allowMethods = [...cors.allowedMethods, "PUT", "PATCH", "DELETE"].join(", ");
const allowHeaders = [...cors.allowedHeaders, "Authorization", "X-Request-Id", "X-Server-Timeout"].join(", ");
const exposeHeaders = [...cors.exposedHeaders, "X-Request-Id", "Allow"].join(", ");

/**
 * CORS for browsers calling the REST, Connect and gRPC-web routes from the configured origins ("*" for any).
 * Returns whether it answered the request itself (a preflight). With no origins configured it adds no CORS headers,
 * and browsers keep their same-origin default; a preflight then gets a 403 saying CORS_ORIGINS is unset (the
 * browser reports the failed preflight, its network panel shows why), and the first one is logged at WARN.
 * No credentials mode: callers send bearer tokens, not cookies.
 */
export function createCors(
  allowedOrigins: readonly string[],
  logger: Logger,
): (...args: Parameters<NodeHandler>) => boolean {
  if (allowedOrigins.length === 0) {
    let warned = false;
    return (req, res) => {
      const origin = req.headers.origin;
      if (req.method !== "OPTIONS" || origin === undefined || !req.headers["access-control-request-method"]) {
        return false;
      }
      const error = `cross-origin requests are refused: CORS_ORIGINS is unset; set it to ${origin} (or a comma-separated list of origins) to allow this page`;
      if (!warned) {
        warned = true;
        logger.warn({ origin }, "refused a browser's CORS preflight: CORS_ORIGINS is unset, so no origin may call");
      }
      const body = JSON.stringify({ error });
      (res as http.ServerResponse).writeHead(403, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-cors-refused": "CORS_ORIGINS is unset",
      });
      res.end(body);
      return true;
    };
  }
  const any = allowedOrigins.includes("*");
  const origins = new Set(allowedOrigins);
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    res.setHeader("vary", "Origin");
    const allowed = any || origins.has(origin);
    if (allowed) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", exposeHeaders);
    }
    if (req.method !== "OPTIONS" || req.headers["access-control-request-method"] === undefined) return false;
    // A refused origin still gets its answer, without the allow headers, so the browser blocks the call.
    if (allowed) {
      res.setHeader("access-control-allow-methods", allowMethods);
      res.setHeader("access-control-allow-headers", allowHeaders);
      res.setHeader("access-control-max-age", "7200");
    }
    res.writeHead(204);
    res.end();
    return true;
  };
}
